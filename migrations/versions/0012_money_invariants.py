"""money invariants in the database

Revision ID: 0012
Revises: 0011

The services lock the row they change and check their precondition inside the lock; these
constraints hold the same rules for whatever slips past them (raw SQL, a future bug):

- each financial event is booked once in the ledger: one movement of an invoice's total,
  one void per invoice, one per credit note, payment, payment reversal and refund;
- one standing manual payment per invoice (a repeated "mark paid" cannot add a second);
- credit notes never credit more than the invoice, payments never pay more than it, and
  a void invoice was never paid.

The unique indexes are partial indexes on both databases. The invoice rules are CHECK
constraints on PostgreSQL; SQLite cannot add a CHECK to an existing table without
rebuilding it (which would drop the triggers other migrations put on it), so there they
are BEFORE INSERT and BEFORE UPDATE triggers that abort the statement. The rules are
copied here on purpose: a migration must not change when the application code does.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ONE_MOVEMENT_PER = (
    ("invoice", "invoice_id"),
    ("void", "invoice_id"),
    ("credit_note", "credit_note_id"),
    ("payment", "payment_id"),
    ("adjustment", "payment_id"),
    ("refund", "refund_id"),
)
MANUAL_PAYMENT = "provider = 'manual' AND status = 'succeeded'"
INVOICE_CHECKS = (
    ("credited_within_total", "amount_credited_minor = 0 OR amount_credited_minor <= amount_due_minor"),
    ("paid_within_total", "amount_paid_minor = 0 OR amount_paid_minor <= amount_due_minor"),
    ("void_unpaid", "status <> 'void' OR amount_paid_minor = 0"),
)


def _movement_index(kind: str, column: str) -> str:
    return f"uq_ledger_movements_one_{kind}_per_{column.removesuffix('_id')}"


def upgrade():
    for kind, column in ONE_MOVEMENT_PER:
        where = sa.text(f"kind = '{kind}' AND {column} IS NOT NULL")
        op.create_index(
            _movement_index(kind, column),
            "ledger_movements",
            [column],
            unique=True,
            sqlite_where=where,
            postgresql_where=where,
        )
    op.create_index(
        "uq_payments_one_manual_per_invoice",
        "payments",
        ["invoice_id"],
        unique=True,
        sqlite_where=sa.text(MANUAL_PAYMENT),
        postgresql_where=sa.text(MANUAL_PAYMENT),
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, condition in INVOICE_CHECKS:
            op.create_check_constraint(op.f(f"ck_invoices_{name}"), "invoices", condition)
        return
    for name, condition in INVOICE_CHECKS:
        new_condition = " ".join(
            f"NEW.{word}" if word.startswith(("amount_", "status")) else word
            for word in condition.split()
        )
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER invoices_{name}_{event.lower()} BEFORE {event} ON invoices "
                f"FOR EACH ROW WHEN NOT ({new_condition}) BEGIN "
                f"SELECT RAISE(ABORT, 'CHECK constraint failed: ck_invoices_{name}'); END"
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name, _ in INVOICE_CHECKS:
            op.drop_constraint(op.f(f"ck_invoices_{name}"), "invoices", type_="check")
    else:
        for name, _ in INVOICE_CHECKS:
            for event in ("insert", "update"):
                op.execute(f"DROP TRIGGER invoices_{name}_{event}")
    op.drop_index("uq_payments_one_manual_per_invoice", table_name="payments")
    for kind, column in ONE_MOVEMENT_PER:
        op.drop_index(_movement_index(kind, column), table_name="ledger_movements")
