"""invitations: people join a company by a single-use, expiring e-mailed link

Revision ID: 0014
Revises: 0013

- New table ``invitations``: tenant, e-mail (lower-case), role, who invited, the SHA-256
  hash of the link's secret (never the secret), expiry, accepted / revoked times, the
  resend count and the e-mail's language.
- A partial unique index allows one open (neither accepted nor revoked) invitation per
  tenant and e-mail, so two invites sent at once cannot both be written.
"""

import sqlalchemy as sa
from alembic import op

import portal.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = "accepted_at IS NULL AND revoked_at IS NULL"


def upgrade():
    op.create_table(
        "invitations",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "owner",
                "billing_admin",
                "viewer",
                name="invitation_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("invited_by_id", _ID, nullable=True),
        sa.Column("invited_by_label", sa.String(length=254), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("accepted_at", portal.db.UTCDateTime(), nullable=True),
        sa.Column("accepted_user_id", _ID, nullable=True),
        sa.Column("revoked_at", portal.db.UTCDateTime(), nullable=True),
        sa.Column("resend_count", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("id", _ID, nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("created_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", portal.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_invitations_email_lowercase")),
        sa.CheckConstraint(
            "resend_count >= 0", name=op.f("ck_invitations_resend_count_non_negative")
        ),
        sa.CheckConstraint(
            "accepted_at IS NULL OR revoked_at IS NULL",
            name=op.f("ck_invitations_accepted_or_revoked"),
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["users.id"],
            name=op.f("fk_invitations_invited_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["accepted_user_id"],
            ["users.id"],
            name=op.f("fk_invitations_accepted_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invitations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("public_id", name=op.f("uq_invitations_public_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    op.create_index(op.f("ix_invitations_tenant_id"), "invitations", ["tenant_id"])
    op.create_index(
        "uq_invitations_open_email",
        "invitations",
        ["tenant_id", "email"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade():
    op.drop_index("uq_invitations_open_email", table_name="invitations")
    op.drop_index(op.f("ix_invitations_tenant_id"), table_name="invitations")
    op.drop_table("invitations")
