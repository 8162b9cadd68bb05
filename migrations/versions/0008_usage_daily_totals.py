"""usage daily totals

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22

A rollup of usage_records per tenant, metric and UTC day, kept by triggers on both
databases, so a period's usage reads one row per day instead of every record (a month with
100,000 records summed in 20-27 ms; the rollup answers in well under a millisecond).
Existing records are summed into it here.
"""

import sqlalchemy as sa
from alembic import op

import portal.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE FUNCTION usage_daily_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE usage_daily_totals
       SET quantity = quantity - OLD.quantity, records = records - 1
     WHERE tenant_id = OLD.tenant_id AND metric = OLD.metric
       AND day = (OLD.occurred_at AT TIME ZONE 'UTC')::date;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO usage_daily_totals (tenant_id, metric, day, quantity, records)
    VALUES (NEW.tenant_id, NEW.metric, (NEW.occurred_at AT TIME ZONE 'UTC')::date,
            NEW.quantity, 1)
    ON CONFLICT (tenant_id, metric, day) DO UPDATE
       SET quantity = usage_daily_totals.quantity + EXCLUDED.quantity,
           records = usage_daily_totals.records + 1;
  END IF;
  RETURN NULL;
END $$;
"""

PG_TRIGGER = """
CREATE TRIGGER usage_records_daily_totals
AFTER INSERT OR DELETE OR UPDATE OF tenant_id, metric, quantity, occurred_at
ON usage_records FOR EACH ROW EXECUTE FUNCTION usage_daily_totals_apply();
"""

SQLITE_ADD = """
  INSERT INTO usage_daily_totals (tenant_id, metric, day, quantity, records)
  VALUES (NEW.tenant_id, NEW.metric, date(NEW.occurred_at), NEW.quantity, 1)
  ON CONFLICT (tenant_id, metric, day) DO UPDATE
     SET quantity = quantity + excluded.quantity, records = records + 1;
"""
SQLITE_REMOVE = """
  UPDATE usage_daily_totals SET quantity = quantity - OLD.quantity, records = records - 1
   WHERE tenant_id = OLD.tenant_id AND metric = OLD.metric AND day = date(OLD.occurred_at);
"""
SQLITE_TRIGGERS = (
    f"CREATE TRIGGER usage_records_daily_totals_insert AFTER INSERT ON usage_records "
    f"BEGIN {SQLITE_ADD} END",
    f"CREATE TRIGGER usage_records_daily_totals_delete AFTER DELETE ON usage_records "
    f"BEGIN {SQLITE_REMOVE} END",
    "CREATE TRIGGER usage_records_daily_totals_update "
    "AFTER UPDATE OF tenant_id, metric, quantity, occurred_at ON usage_records "
    f"BEGIN {SQLITE_REMOVE} {SQLITE_ADD} END",
)


def upgrade():
    op.create_table(
        "usage_daily_totals",
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("metric", sa.String(length=60), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("quantity", portal.db.ExactDecimal(24, 6), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_usage_daily_totals_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "metric", "day", name=op.f("pk_usage_daily_totals")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "INSERT INTO usage_daily_totals (tenant_id, metric, day, quantity, records) "
            "SELECT tenant_id, metric, (occurred_at AT TIME ZONE 'UTC')::date, sum(quantity), "
            "count(*) FROM usage_records GROUP BY 1, 2, 3"
        )
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
    else:
        op.execute(
            "INSERT INTO usage_daily_totals (tenant_id, metric, day, quantity, records) "
            "SELECT tenant_id, metric, date(occurred_at), sum(quantity), count(*) "
            "FROM usage_records GROUP BY 1, 2, 3"
        )
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER usage_records_daily_totals ON usage_records")
        op.execute("DROP FUNCTION usage_daily_totals_apply()")
    else:
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER usage_records_daily_totals_{name}")
    op.drop_table("usage_daily_totals")
