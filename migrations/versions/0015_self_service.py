"""self service: what a company's own users may change on their subscriptions

Revision ID: 0015
Revises: 0014

``company_billing_settings`` gets three switches the operator sets per company: quantity
changes, switching to prices marked ``self_serve``, and cancelling at period end (with
resuming). All three default to allowed, for the rows already there too.

Plain ``add_column`` with a server default (no table rebuild on SQLite).
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

COLUMNS = ("self_service_quantity", "self_service_price_switch", "self_service_cancel")


def upgrade():
    for column in COLUMNS:
        op.add_column(
            "company_billing_settings",
            sa.Column(column, sa.Boolean(), nullable=False, server_default=sa.true()),
        )


def downgrade():
    with op.batch_alter_table("company_billing_settings") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
