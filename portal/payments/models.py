"""Models of payment methods, payments, refunds and provider events (webhook inbox)."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import (
    Base,
    IdMixin,
    JSONType,
    PublicIdMixin,
    TenantMixin,
    TimestampMixin,
    UTCDateTime,
    enum_column,
    utcnow,
)


class PaymentMethodStatus(enum.StrEnum):
    """Whether a saved method can be charged."""

    PENDING = "pending"  # setup started, not confirmed by the provider yet
    ACTIVE = "active"
    INACTIVE = "inactive"  # removed by the tenant or revoked at the provider


class PaymentMethod(IdMixin, PublicIdMixin, TenantMixin, TimestampMixin, Base):
    """A card, SEPA mandate or other method saved at a payment provider."""

    __tablename__ = "payment_methods"

    #: Provider code: "stripe", "mollie" or "manual".
    provider: Mapped[str] = mapped_column(sa.String(20))
    #: Method type: card, sepa_debit (Stripe); creditcard, directdebit, paypal (Mollie).
    method_type: Mapped[str] = mapped_column(sa.String(30))
    #: Provider's id of the method (pm_…, mdt_…); NULL while pending.
    provider_ref: Mapped[str | None] = mapped_column(sa.String(100))
    #: Provider's id of the customer (cus_…, cst_…).
    provider_customer_ref: Mapped[str | None] = mapped_column(sa.String(100))
    #: Provider's id of the setup in progress (seti_…, tr_…).
    setup_ref: Mapped[str | None] = mapped_column(sa.String(100))
    #: Whether it can be charged.
    status: Mapped[PaymentMethodStatus] = mapped_column(
        enum_column(PaymentMethodStatus, "payment_method_status"),
        default=PaymentMethodStatus.PENDING,
    )
    #: The method charged automatically; at most one per tenant.
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: Card brand or bank name, for display.
    brand: Mapped[str | None] = mapped_column(sa.String(40))
    #: Last four digits of the card number or IBAN.
    last4: Mapped[str | None] = mapped_column(sa.String(4))
    #: Card expiry month (1-12).
    exp_month: Mapped[int | None] = mapped_column(sa.Integer)
    #: Card expiry year (four digits).
    exp_year: Mapped[int | None] = mapped_column(sa.Integer)
    #: Card holder or account holder name.
    holder_name: Mapped[str | None] = mapped_column(sa.String(200))
    #: SEPA mandate reference, if any.
    mandate_reference: Mapped[str | None] = mapped_column(sa.String(100))
    #: When it stopped being usable.
    deactivated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_ref"),
        sa.CheckConstraint(
            "exp_month IS NULL OR exp_month BETWEEN 1 AND 12", name="exp_month_range"
        ),
        sa.CheckConstraint("NOT is_default OR status = 'active'", name="default_is_active"),
        # At most one default method per tenant.
        sa.Index(
            "uq_payment_methods_one_default",
            "tenant_id",
            unique=True,
            sqlite_where=sa.text("is_default"),
            postgresql_where=sa.text("is_default"),
        ),
    )


class PaymentStatus(enum.StrEnum):
    """Outcome of a collection attempt."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"  # e.g. 3-D Secure
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class Payment(IdMixin, PublicIdMixin, TenantMixin, TimestampMixin, Base):
    """Money received (or attempted) for an invoice."""

    __tablename__ = "payments"

    #: The invoice paid.
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    #: Method charged; NULL for manual payments (bank transfer marked by an admin).
    payment_method_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("payment_methods.id", ondelete="SET NULL")
    )
    #: Provider code: "stripe", "mollie" or "manual".
    provider: Mapped[str] = mapped_column(sa.String(20))
    #: Provider's id (pi_…, tr_…); unique per provider.
    provider_ref: Mapped[str | None] = mapped_column(sa.String(100))
    #: Amount in minor units, > 0.
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    #: ISO 4217 currency.
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: Outcome.
    status: Mapped[PaymentStatus] = mapped_column(
        enum_column(PaymentStatus, "payment_status"), default=PaymentStatus.PENDING
    )
    #: Total refunded so far, minor units.
    refunded_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Provider's failure code (card_declined, …).
    failure_code: Mapped[str | None] = mapped_column(sa.String(60))
    #: Human failure message.
    failure_message: Mapped[str | None] = mapped_column(sa.String(500))
    #: URL where the tenant completes an action (3-D Secure), if required.
    action_url: Mapped[str | None] = mapped_column(sa.String(500))
    #: Which collection attempt of the invoice this is (1, 2, …).
    attempt: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: When it succeeded.
    succeeded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    payment_method: Mapped[PaymentMethod | None] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("provider", "provider_ref"),
        sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
        sa.CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refund_within_amount"
        ),
        # One standing manual payment per invoice: a repeated "mark paid" cannot add one.
        sa.Index(
            "uq_payments_one_manual_per_invoice",
            "invoice_id",
            unique=True,
            sqlite_where=sa.text("provider = 'manual' AND status = 'succeeded'"),
            postgresql_where=sa.text("provider = 'manual' AND status = 'succeeded'"),
        ),
    )


class RefundStatus(enum.StrEnum):
    """State of a refund at the provider."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(IdMixin, PublicIdMixin, TenantMixin, TimestampMixin, Base):
    """Money returned to a tenant against a payment of an invoice."""

    __tablename__ = "refunds"

    #: The payment refunded.
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id"), index=True)
    #: The invoice concerned.
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    #: Amount in minor units, > 0.
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    #: ISO 4217 currency.
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: Why.
    reason: Mapped[str | None] = mapped_column(sa.String(300))
    #: State at the provider.
    status: Mapped[RefundStatus] = mapped_column(
        enum_column(RefundStatus, "refund_status"), default=RefundStatus.PENDING
    )
    #: Provider's id (re_…).
    provider_ref: Mapped[str | None] = mapped_column(sa.String(100))

    __table_args__ = (sa.CheckConstraint("amount_minor > 0", name="amount_positive"),)


class ProviderEventStatus(enum.StrEnum):
    """Processing state of an inbox event."""

    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"  # not ours or not a type we act on
    FAILED = "failed"  # retried by the queue


class ProviderEvent(IdMixin, Base):
    """A webhook event as received, keyed by the provider's event id (the inbox).

    A duplicate or replayed delivery hits the unique key and changes nothing.
    """

    __tablename__ = "provider_events"

    #: Provider code.
    provider: Mapped[str] = mapped_column(sa.String(20))
    #: Provider's event id (evt_… for Stripe; the object id plus status for Mollie).
    event_id: Mapped[str] = mapped_column(sa.String(200))
    #: Event type (setup_intent.succeeded, payment.paid, …).
    event_type: Mapped[str] = mapped_column(sa.String(100))
    #: Raw payload as received.
    payload: Mapped[dict] = mapped_column(JSONType)
    #: Processing state.
    status: Mapped[ProviderEventStatus] = mapped_column(
        enum_column(ProviderEventStatus, "provider_event_status"),
        default=ProviderEventStatus.RECEIVED,
    )
    #: Processing attempts.
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Last processing error.
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: When it arrived.
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When it was processed.
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (sa.UniqueConstraint("provider", "event_id"),)
