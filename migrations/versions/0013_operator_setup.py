"""operator setup: what an operator needs to bill from an empty install

Revision ID: 0013
Revises: 0012

- ``prices``: tax treatment (services or goods) and exemption reason, ``self_serve`` (tenants
  may switch to it), ``version`` and ``replaces_id`` (an edit of a price already invoiced
  makes a new version; the old one is renamed "<code>@v<n>" and archived), ``archived_at``.
- ``plans`` (products) and ``tenants`` (companies): ``archived_at``.
- ``sellers``: ``email_sender_name``; ``subscriptions``: ``cancel_reason``.
- ``usage_records``: ``fingerprint``, so a repeated idempotency key with another body is
  refused instead of taken for a repeat.
- New tables: ``coupons``, ``subscription_coupons`` and ``one_off_charges``.

Columns are added with plain ``add_column`` and server defaults for the rows already there
(no table rebuild on SQLite). Their CHECK constraints are added on PostgreSQL; SQLite cannot
add one to an existing table without a rebuild, and the models validate the same values.
"""

import sqlalchemy as sa
from alembic import op

import portal.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TAX_TREATMENTS = ("services", "goods")


def _enum(name, values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade():
    op.add_column(
        "prices",
        sa.Column("tax_treatment", sa.String(32), nullable=False, server_default="services"),
    )
    op.add_column("prices", sa.Column("vat_exemption_reason", sa.Text(), nullable=True))
    op.add_column(
        "prices", sa.Column("self_serve", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "prices", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its reference in one statement (no ALTER of constraints).
        op.execute("ALTER TABLE prices ADD COLUMN replaces_id INTEGER REFERENCES prices (id)")
    else:
        op.add_column("prices", sa.Column("replaces_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            op.f("fk_prices_replaces_id_prices"), "prices", "prices", ["replaces_id"], ["id"]
        )
    op.add_column("prices", sa.Column("archived_at", portal.db.UTCDateTime(), nullable=True))
    op.add_column("plans", sa.Column("archived_at", portal.db.UTCDateTime(), nullable=True))
    op.add_column("tenants", sa.Column("archived_at", portal.db.UTCDateTime(), nullable=True))
    op.add_column("sellers", sa.Column("email_sender_name", sa.String(100), nullable=True))
    op.add_column("subscriptions", sa.Column("cancel_reason", sa.String(500), nullable=True))
    op.add_column("usage_records", sa.Column("fingerprint", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(
            "tax_treatment", "prices", "tax_treatment IN ('services', 'goods')"
        )
        op.create_check_constraint("version_positive", "prices", "version >= 1")

    op.create_table(
        "coupons",
        sa.Column("seller_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("percent_off", portal.db.ExactDecimal(9, 4), nullable=True),
        sa.Column("amount_off_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column(
            "duration", _enum("coupon_duration", ("once", "repeating", "forever")), nullable=False
        ),
        sa.Column("duration_periods", sa.Integer(), nullable=True),
        sa.Column("archived_at", portal.db.UTCDateTime(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(percent_off IS NULL) <> (amount_off_minor IS NULL)",
            name=op.f("ck_coupons_one_kind_of_discount"),
        ),
        sa.CheckConstraint(
            # > 0 only: SQLite stores exact decimals scaled (ExactDecimal), so "<= 100" cannot be
            # written portably here; the catalog service refuses more than 100 %.
            "percent_off IS NULL OR percent_off > 0",
            name=op.f("ck_coupons_percent_off_range"),
        ),
        sa.CheckConstraint(
            "amount_off_minor IS NULL OR (amount_off_minor > 0 AND currency IS NOT NULL)",
            name=op.f("ck_coupons_amount_off_has_currency"),
        ),
        sa.CheckConstraint(
            "duration <> 'repeating' OR duration_periods >= 1",
            name=op.f("ck_coupons_repeating_has_periods"),
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.id"], name=op.f("fk_coupons_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("public_id", name=op.f("uq_coupons_public_id")),
        sa.UniqueConstraint("seller_id", "code", name=op.f("uq_coupons_seller_id_code")),
    )
    op.create_index(op.f("ix_coupons_seller_id"), "coupons", ["seller_id"])

    op.create_table(
        "subscription_coupons",
        sa.Column(
            "subscription_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("coupon_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("applied_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("periods_used", sa.Integer(), nullable=False),
        sa.Column("removed_at", portal.db.UTCDateTime(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.CheckConstraint(
            "periods_used >= 0", name=op.f("ck_subscription_coupons_periods_used_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_subscription_coupons_coupon_id_coupons")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_subscription_coupons_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_subscription_coupons_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_coupons")),
    )
    for column in ("subscription_id", "coupon_id", "tenant_id"):
        op.create_index(
            op.f(f"ix_subscription_coupons_{column}"), "subscription_coupons", [column]
        )

    op.create_table(
        "one_off_charges",
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("quantity", portal.db.ExactDecimal(24, 6), nullable=False),
        sa.Column("unit_price", portal.db.ExactDecimal(24, 10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_treatment", _enum("charge_tax_treatment", TAX_TREATMENTS), nullable=False),
        sa.Column("vat_exemption_reason", sa.Text(), nullable=True),
        sa.Column("timing", _enum("charge_timing", ("next_invoice", "now")), nullable=False),
        sa.Column("invoice_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("created_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_one_off_charges_quantity_positive")),
        sa.CheckConstraint(
            "unit_price >= 0", name=op.f("ck_one_off_charges_unit_price_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_one_off_charges_invoice_id_invoices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_one_off_charges_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_one_off_charges")),
        sa.UniqueConstraint("public_id", name=op.f("uq_one_off_charges_public_id")),
    )
    for column in ("invoice_id", "tenant_id"):
        op.create_index(op.f(f"ix_one_off_charges_{column}"), "one_off_charges", [column])


def downgrade():
    op.drop_table("one_off_charges")
    op.drop_table("subscription_coupons")
    op.drop_table("coupons")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("fk_prices_replaces_id_prices"), "prices", type_="foreignkey")
        op.drop_constraint(op.f("ck_prices_version_positive"), "prices", type_="check")
        op.drop_constraint(op.f("ck_prices_tax_treatment"), "prices", type_="check")
    # Not in batch mode: rebuilding usage_records would drop its daily-totals triggers.
    op.execute("ALTER TABLE usage_records DROP COLUMN fingerprint")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("cancel_reason")
    with op.batch_alter_table("sellers") as batch:
        batch.drop_column("email_sender_name")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("archived_at")
    with op.batch_alter_table("prices") as batch:
        for column in (
            "archived_at",
            "replaces_id",
            "version",
            "self_serve",
            "vat_exemption_reason",
            "tax_treatment",
        ):
            batch.drop_column(column)
