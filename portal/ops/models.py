"""Models of jobs, idempotency records and the audit log."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import (
    Base,
    IdMixin,
    JSONType,
    PublicIdMixin,
    TimestampMixin,
    UTCDateTime,
    enum_column,
    utcnow,
)


class JobStatus(enum.StrEnum):
    """State of a background job."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Job(IdMixin, PublicIdMixin, TimestampMixin, Base):
    """A long-running task whose progress pages and APIs show (202 + job id)."""

    __tablename__ = "jobs"

    #: Task name (invoice_run, quota_report, …).
    kind: Mapped[str] = mapped_column(sa.String(60))
    #: Tenant concerned, if the job is about one.
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    #: State.
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    #: Units of work done.
    progress_done: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Units of work in total, when known.
    progress_total: Mapped[int | None] = mapped_column(sa.Integer)
    #: Arguments the job was started with.
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: Result when finished (counts, report rows, document ids).
    result: Mapped[dict | None] = mapped_column(JSONType)
    #: Error message when failed.
    error: Mapped[str | None] = mapped_column(sa.Text)
    #: Who started it (user e-mail or token name).
    created_by: Mapped[str | None] = mapped_column(sa.String(254))
    #: When it started running.
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When it finished.
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("progress_done >= 0", name="progress_non_negative"),
        sa.CheckConstraint(
            "progress_total IS NULL OR progress_done <= progress_total", name="progress_bounded"
        ),
    )

    @property
    def percent(self) -> int | None:
        if not self.progress_total:
            return None
        return round(100 * self.progress_done / self.progress_total)


class JobStep(Base):
    """One unit of work a job has counted (e.g. one company of an invoice generation).

    Written in the transaction that does the work and counts it, under the job's row lock,
    so a step run again (a retry, or a copy the sweeper re-enqueued) counts nothing twice;
    the sweeper re-enqueues only the steps without a row. Deleted when the job finishes.
    """

    __tablename__ = "job_steps"

    #: The job.
    job_id: Mapped[int] = mapped_column(
        sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    #: Which unit (a tenant id, "report").
    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    #: When it was done.
    done_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskClaim(IdMixin, Base):
    """A claim committed before a side effect that must not be repeated blindly.

    Charging an invoice cannot be undone: the claim is committed before the provider is
    called and deleted in the transaction that records the outcome. A claim found past its
    lease means a worker died in between, and nobody knows whether the provider acted: it
    is reported (``reported_at``) for someone to check, never retried automatically.
    """

    __tablename__ = "task_claims"

    #: What kind of side effect ("collection").
    kind: Mapped[str] = mapped_column(sa.String(40))
    #: Which one (the invoice id).
    key: Mapped[str] = mapped_column(sa.String(100))
    #: When it was claimed.
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Until when the claiming worker is presumed alive.
    lease_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: When the sweeper reported it as unresolved (once).
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("kind", "key"),)


class IdempotencyRecord(IdMixin, Base):
    """A request seen under an idempotency key and its stored response.

    Inserted before the work starts, so a concurrent duplicate hits the unique key.
    """

    __tablename__ = "idempotency_records"

    #: Namespace of the key: the caller (token) and the API surface.
    scope: Mapped[str] = mapped_column(sa.String(100))
    #: The client's key (X-Request-id).
    key: Mapped[str] = mapped_column(sa.String(100))
    #: SHA-256 of method, path, query and body; another body under the same key is refused.
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    #: HTTP status of the stored response; NULL while the first request is in progress.
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    #: Stored response body.
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    #: Stored response headers worth replaying (Content-Type, Location).
    response_headers: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: When the key was first seen.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: After this, the key may be used again (5 minutes for the provider console).
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (sa.UniqueConstraint("scope", "key"),)


class AuditLogEntry(IdMixin, Base):
    """An admin action, append-only: database triggers refuse UPDATE and DELETE.

    Its foreign keys do not cascade: users and tenants with history are deactivated, not
    deleted, so the log keeps pointing at them.
    """

    __tablename__ = "audit_log"

    #: User who acted, if a person.
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: Token that acted, if a machine.
    actor_token_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_tokens.id"))
    #: Readable actor (e-mail or token name), kept if the user is deleted.
    actor_label: Mapped[str] = mapped_column(sa.String(254))
    #: What was done (invoice.mark_paid, settings.update, …).
    action: Mapped[str] = mapped_column(sa.String(60))
    #: Type of the object acted on.
    target_type: Mapped[str] = mapped_column(sa.String(60))
    #: Public id of the object acted on.
    target_id: Mapped[str | None] = mapped_column(sa.String(64))
    #: Tenant concerned, if any.
    tenant_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    #: Details (before/after values, parameters).
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: Client address.
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    #: Correlation id of the request.
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    #: When it happened (UTC).
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
