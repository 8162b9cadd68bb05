"""Models of the e-mail outbox and of signed links."""

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
    TenantMixin,
    UTCDateTime,
    enum_column,
    utcnow,
)


class OutboxStatus(enum.StrEnum):
    """Delivery state of an e-mail."""

    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker, Message-ID committed, being handed to SMTP
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry


class OutboxEmail(IdMixin, PublicIdMixin, Base):
    """An e-mail written in the same transaction as its cause and delivered by the queue."""

    __tablename__ = "email_outbox"

    #: Tenant concerned, if any.
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    #: Template name under templates/emails/.
    template: Mapped[str] = mapped_column(sa.String(60))
    #: Unique key of the cause (e.g. "invoice-sent:<id>:<n>"): the same e-mail is never
    #: queued twice.
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    #: Recipients.
    to_addrs: Mapped[list[str]] = mapped_column(JSONType)
    #: Recipients in copy.
    cc_addrs: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: Rendered subject.
    subject: Mapped[str] = mapped_column(sa.String(300))
    #: Rendered plain-text body.
    body_text: Mapped[str] = mapped_column(sa.Text)
    #: Rendered HTML body.
    body_html: Mapped[str | None] = mapped_column(sa.Text)
    #: Attachments to build at delivery, e.g. [{"kind": "invoice_pdf", "invoice": "<uuid>"}].
    attachments: Mapped[list[dict]] = mapped_column(JSONType, default=list)
    #: Delivery state.
    status: Mapped[OutboxStatus] = mapped_column(
        enum_column(OutboxStatus, "outbox_status"), default=OutboxStatus.QUEUED
    )
    #: Delivery attempts made.
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Last delivery error.
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: Message-ID header used, so a retry after an unclear failure can be recognized.
    message_id: Mapped[str | None] = mapped_column(sa.String(200))
    #: When it was queued.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When it was handed to the SMTP server.
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When the current (or last) delivery attempt claimed it.
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Until when the row belongs to the task that last touched it: the lease of a sending
    #: claim, or after a failed attempt the time its queued retry is due. The sweeper
    #: re-enqueues a queued or sending row past it (NULL: ``created_at`` plus the grace).
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.Index("ix_email_outbox_status_created", "status", "created_at"),)


class SignedLink(IdMixin, PublicIdMixin, TenantMixin, Base):
    """A link e-mailed to a billing contact: one invoice, one purpose, expiring, revocable.

    The URL carries the public id signed with the app's secret; this row makes it
    revocable and records its use.
    """

    __tablename__ = "signed_links"

    #: The invoice the link opens.
    invoice_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    #: What the link allows: "view", "pay" or "complete_payment".
    purpose: Mapped[str] = mapped_column(sa.String(30))
    #: The invoice's link version it was issued under; rotating the version revokes it.
    version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    #: Address it was sent to.
    recipient: Mapped[str | None] = mapped_column(sa.String(254))
    #: When it stops working.
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: Set when revoked.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Last time it was opened.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When it was created.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class InvoiceLinkVersion(IdMixin, TenantMixin, Base):
    """The current signed-link version of one invoice.

    Kept beside the invoice rather than on it: an issued invoice is frozen, and the version
    is delivery bookkeeping, not part of the document. Links carry the version they were
    issued under; rotating it (an admin action) makes every earlier link stop working.
    """

    __tablename__ = "invoice_link_versions"

    #: The invoice whose links this counts.
    invoice_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), unique=True
    )
    #: Current version, from 1; links of a lower version are revoked.
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: When the version was last rotated.
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Who rotated it last (a platform admin).
    rotated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    __table_args__ = (sa.CheckConstraint("version >= 1", name="version_positive"),)
