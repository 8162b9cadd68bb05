"""freeze issued documents on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Triggers refuse changes to what an issued invoice or credit note printed, to their lines,
and their deletion. The ORM guard in portal/invoices/freeze.py enforces the same on every
database; these triggers also stop raw SQL. The column lists are copied here on purpose:
a migration must not change when the application code does later.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INVOICE_COLUMNS = (
    "tenant_id",
    "seller_id",
    "number",
    "kind",
    "currency",
    "period_start",
    "period_end",
    "issue_date",
    "due_date",
    "buyer_reference",
    "purchase_order",
    "note",
    "lines_total_minor",
    "allowance_total_minor",
    "charge_total_minor",
    "tax_exclusive_minor",
    "tax_minor",
    "tax_inclusive_minor",
    "prepaid_minor",
    "rounding_minor",
    "amount_due_minor",
    "seller_snapshot",
    "buyer_snapshot",
    "language",
    "finalized_at",
)
CREDIT_NOTE_COLUMNS = (
    "tenant_id",
    "seller_id",
    "invoice_id",
    "number",
    "currency",
    "reason",
    "issue_date",
    "lines_total_minor",
    "tax_exclusive_minor",
    "tax_minor",
    "tax_inclusive_minor",
    "amount_due_minor",
    "seller_snapshot",
    "buyer_snapshot",
    "language",
    "issued_at",
)
INVOICE_CHILDREN = ("invoice_lines", "invoice_vat_breakdowns", "invoice_allowance_charges")


def _document_function(table: str, columns: tuple[str, ...]) -> str:
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
    return f"""
CREATE FUNCTION {table}_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'draft' THEN
    IF TG_OP = 'DELETE' THEN
      RAISE EXCEPTION '{table} %: an issued document cannot be deleted', OLD.number
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF {changed} THEN
      RAISE EXCEPTION '{table} %: an issued document is frozen', OLD.number
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$"""


def _children_function(name: str, parent: str, fk: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parent_status text;
BEGIN
  SELECT status INTO parent_status FROM {parent}
   WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.{fk} ELSE NEW.{fk} END;
  IF parent_status IS NOT NULL AND parent_status <> 'draft' THEN
    RAISE EXCEPTION '%: lines of an issued document are frozen', TG_TABLE_NAME
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite relies on the ORM guard
    for table, columns in (("invoices", INVOICE_COLUMNS), ("credit_notes", CREDIT_NOTE_COLUMNS)):
        op.execute(_document_function(table, columns))
        op.execute(
            f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_frozen()"
        )
    op.execute(_children_function("invoice_children_frozen", "invoices", "invoice_id"))
    for table in INVOICE_CHILDREN:
        op.execute(
            f"CREATE TRIGGER {table}_frozen BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION invoice_children_frozen()"
        )
    op.execute(_children_function("credit_note_lines_frozen", "credit_notes", "credit_note_id"))
    op.execute(
        "CREATE TRIGGER credit_note_lines_frozen BEFORE INSERT OR UPDATE OR DELETE "
        "ON credit_note_lines FOR EACH ROW EXECUTE FUNCTION credit_note_lines_frozen()"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*INVOICE_CHILDREN, "credit_note_lines", "invoices", "credit_notes"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_frozen ON {table}")
    for function in (
        "invoices_frozen",
        "credit_notes_frozen",
        "invoice_children_frozen",
        "credit_note_lines_frozen",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
