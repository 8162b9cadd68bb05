"""an invoice may be issued together with its lines

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22

The invoice run writes each invoice already finalized and its lines after it, in bulk,
instead of inserting a draft, its lines, and updating the draft to finalized (a second
write of every invoice row and all its indexes). The lines trigger of migration 0002 now
lets lines be *inserted* under a finalized invoice only in the transaction that finalized
it, recognized by ``finalized_at = transaction_timestamp()`` (the run stamps its invoices
with the database's transaction time; an invoice finalized by an earlier transaction has
an earlier, frozen ``finalized_at``). Every other change to the lines, VAT breakdown and
allowances of an issued invoice is refused as before. SQLite relies on the ORM guard.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADED = """
CREATE OR REPLACE FUNCTION invoice_children_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parent_status text; parent_finalized_at timestamptz;
BEGIN
  SELECT status, finalized_at INTO parent_status, parent_finalized_at FROM invoices
   WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END;
  IF parent_status IS NOT NULL AND parent_status <> 'draft'
     AND NOT (TG_OP = 'INSERT' AND parent_status = 'finalized'
              AND parent_finalized_at = transaction_timestamp()) THEN
    RAISE EXCEPTION '%: lines of an issued document are frozen', TG_TABLE_NAME
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END $$"""

# Migration 0002's function, as it was.
ORIGINAL = """
CREATE OR REPLACE FUNCTION invoice_children_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parent_status text;
BEGIN
  SELECT status INTO parent_status FROM invoices
   WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END;
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
    op.execute(UPGRADED)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(ORIGINAL)
