"""Refunds of payments against issued invoices."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import lock, utcnow
from portal.domain.money import Money
from portal.ledger.models import MovementKind
from portal.ledger.services import record_movement
from portal.payments.models import Payment, PaymentStatus, Refund, RefundStatus
from portal.tenancy.models import Tenant


class RefundRefused(ValueError):
    """The refund is not possible (no successful payment, or more than is left)."""


def refundable_minor(payment: Payment) -> int:
    """What is left to refund of a payment, minor units."""
    if payment.status != PaymentStatus.SUCCEEDED:
        return 0
    return payment.amount_minor - payment.refunded_minor


def refund_payment(
    session: Session, payment: Payment, amount: Money, *, reason: str | None = None
) -> Refund:
    """Record a refund of ``amount`` of a payment (manual payments refund at once).

    Provider payments get their refund created at the provider by the payments module,
    which then marks it succeeded; the ledger records money returned to the tenant.

    :raise RefundRefused: for a non-positive amount, another currency, or more than is left
        (checked under the payment's lock, so concurrent refunds never exceed the payment).
    """
    lock(session, payment)
    if amount.currency != payment.currency:
        raise RefundRefused(f"the payment was in {payment.currency}")
    if amount.minor <= 0:
        raise RefundRefused("a refund must be positive")
    if amount.minor > refundable_minor(payment):
        raise RefundRefused(
            f"only {Money(refundable_minor(payment), payment.currency)} can be refunded"
        )
    refund = Refund(
        tenant_id=payment.tenant_id,
        payment_id=payment.id,
        invoice_id=payment.invoice_id,
        amount_minor=amount.minor,
        currency=amount.currency,
        reason=reason,
        status=RefundStatus.SUCCEEDED if payment.provider == "manual" else RefundStatus.PENDING,
    )
    session.add(refund)
    payment.refunded_minor += amount.minor
    session.flush()
    record_movement(
        session,
        session.get_one(Tenant, payment.tenant_id),
        kind=MovementKind.REFUND,
        amount=amount,
        description="Refund" + (f": {reason}" if reason else ""),
        occurred_at=utcnow(),
        invoice_id=payment.invoice_id,
        payment_id=payment.id,
        refund_id=refund.id,
    )
    return refund


def refunds_of_invoice(session: Session, invoice_id: int) -> list[Refund]:
    return list(
        session.scalars(
            sa.select(Refund).where(Refund.invoice_id == invoice_id).order_by(Refund.id)
        )
    )
