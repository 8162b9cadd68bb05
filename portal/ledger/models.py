"""The ledger movement model."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import (
    Base,
    IdMixin,
    PublicIdMixin,
    TenantMixin,
    UTCDateTime,
    enum_column,
    utcnow,
)


class MovementKind(enum.StrEnum):
    """The financial event a movement records."""

    INVOICE = "invoice"  # + the tenant owes the invoice total
    PAYMENT = "payment"  # - money received
    REFUND = "refund"  # + money returned to the tenant
    CREDIT_NOTE = "credit_note"  # - a credit granted
    ADJUSTMENT = "adjustment"  # ± a manual correction by an admin
    WRITE_OFF = "write_off"  # - an uncollectible invoice written off
    VOID = "void"  # - a voided invoice reversed


#: (movement kind, linked column): at most one such movement per linked object.
ONE_MOVEMENT_PER = (
    ("invoice", "invoice_id"),
    ("void", "invoice_id"),
    ("credit_note", "credit_note_id"),
    ("payment", "payment_id"),
    ("adjustment", "payment_id"),
    ("refund", "refund_id"),
)


class LedgerMovement(IdMixin, PublicIdMixin, TenantMixin, Base):
    """One signed entry in a tenant's account. Append-only: corrections are new movements."""

    __tablename__ = "ledger_movements"

    #: What happened.
    kind: Mapped[MovementKind] = mapped_column(enum_column(MovementKind, "movement_kind"))
    #: Signed amount in minor units: positive increases what the tenant owes.
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    #: ISO 4217 currency of ``amount_minor``.
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: Invoice concerned, if any.
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    #: Payment concerned, if any.
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payments.id"))
    #: Refund concerned, if any.
    refund_id: Mapped[int | None] = mapped_column(sa.ForeignKey("refunds.id"))
    #: Credit note concerned, if any.
    credit_note_id: Mapped[int | None] = mapped_column(sa.ForeignKey("credit_notes.id"))
    #: Human description.
    description: Mapped[str] = mapped_column(sa.String(300))
    #: When the event took effect (UTC).
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the movement was recorded (UTC).
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("amount_minor <> 0", name="amount_non_zero"),
        sa.Index("ix_ledger_movements_tenant_time", "tenant_id", "occurred_at"),
        # Each event is booked once (migration 0012): an invoice's total and its void,
        # a credit note, a payment and its reversal, a refund.
        *(
            sa.Index(
                f"uq_ledger_movements_one_{kind}_per_{column.removesuffix('_id')}",
                column,
                unique=True,
                sqlite_where=sa.text(f"kind = '{kind}' AND {column} IS NOT NULL"),
                postgresql_where=sa.text(f"kind = '{kind}' AND {column} IS NOT NULL"),
            )
            for kind, column in ONE_MOVEMENT_PER
        ),
    )
