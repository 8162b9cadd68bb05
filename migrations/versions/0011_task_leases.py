"""task leases: what a dead worker took can be found again in the database

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A worker killed while it runs a task loses that task (huey has taken it off the queue), so
every task's state must be recoverable from its row, where the sweeper finds it:

- ``email_outbox`` gets a ``sending`` state and its claim: ``claimed_at`` (when the current
  attempt started) and ``lease_until`` (until when it belongs to that attempt, or, after a
  failed attempt, until the queue's retry is due). Message-ID and claim are committed before
  the e-mail is handed to SMTP.
- ``job_steps``: one row per unit of work a job has counted (a company of an invoice
  generation), written with the work, so a re-enqueued step never counts twice.
- ``task_claims``: a claim committed before a side effect that must not be repeated blindly
  (charging an invoice); found expired, it is reported instead of repeated.

Columns are added with plain ``add_column`` (no table rebuild on SQLite). The outbox's
status CHECK constraint must admit ``sending``: PostgreSQL replaces the constraint, SQLite
rebuilds ``email_outbox`` in batch mode (the table has no triggers and nothing refers to
it, so the rebuild loses nothing).
"""

import sqlalchemy as sa
from alembic import op

import portal.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OLD_STATUSES = ("queued", "sent", "failed")
NEW_STATUSES = ("queued", "sending", "sent", "failed")
CHECK = "ck_email_outbox_outbox_status"


def _status_type(values):
    return sa.Enum(
        *values, name="outbox_status", native_enum=False, create_constraint=True, length=32
    )


def _set_statuses(values, old_values) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f(CHECK), "email_outbox", type_="check")
        allowed = ", ".join(f"'{value}'" for value in values)
        op.create_check_constraint(op.f(CHECK), "email_outbox", f"status IN ({allowed})")
        return
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=_status_type(old_values),
            type_=_status_type(values),
            existing_nullable=False,
        )


def upgrade():
    op.add_column("email_outbox", sa.Column("claimed_at", portal.db.UTCDateTime(), nullable=True))
    op.add_column("email_outbox", sa.Column("lease_until", portal.db.UTCDateTime(), nullable=True))
    _set_statuses(NEW_STATUSES, OLD_STATUSES)

    op.create_table(
        "job_steps",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("done_at", portal.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_steps_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "key", name=op.f("pk_job_steps")),
    )
    op.create_table(
        "task_claims",
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("claimed_at", portal.db.UTCDateTime(), nullable=False),
        sa.Column("lease_until", portal.db.UTCDateTime(), nullable=False),
        sa.Column("reported_at", portal.db.UTCDateTime(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_claims")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_task_claims_kind_key")),
    )


def downgrade():
    op.drop_table("task_claims")
    op.drop_table("job_steps")
    # An e-mail caught in the middle of its delivery goes back to the queue.
    op.execute("UPDATE email_outbox SET status = 'queued' WHERE status = 'sending'")
    _set_statuses(OLD_STATUSES, NEW_STATUSES)
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_at")
