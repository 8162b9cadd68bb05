"""Transitions of an issued invoice: sent, paid, unpaid again, void, uncollectible.

Each locks the invoice, re-checks its state inside the lock and keeps the ledger in step.
Services flush and never commit.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import lock, utcnow
from portal.domain.money import Money
from portal.invoices.models import (
    Invoice,
)
from portal.invoices.states import (
    InvoiceStatus,
    check_transition,
)
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ledger.services import record_movement
from portal.payments.models import Payment, PaymentStatus
from portal.tenancy.models import Tenant


def mark_sent(session: Session, invoice: Invoice, *, at: dt.datetime | None = None) -> Invoice:
    """Record that the invoice was delivered to the buyer."""
    lock(session, invoice)
    check_transition(invoice.status, InvoiceStatus.SENT)
    invoice.status = InvoiceStatus.SENT
    invoice.sent_at = at or utcnow()
    session.flush()
    return invoice


def mark_paid(
    session: Session, invoice: Invoice, *, at: dt.datetime | None = None, provider: str = "manual"
) -> Payment:
    """Record payment of what is open (e.g. a bank transfer seen by an admin).

    The payment covers what is neither paid nor credited yet, so an invoice is never paid
    beyond its total. A written-off invoice that is paid after all gets its write-off
    reversed first, so the ledger owes the invoice again before the payment settles it.

    :raise InvalidTransition: unless the invoice is issued and unpaid (checked under lock).
    """
    lock(session, invoice)
    check_transition(invoice.status, InvoiceStatus.PAID)
    at = at or utcnow()
    tenant = session.get_one(Tenant, invoice.tenant_id)
    owed = invoice.amount_due_minor - invoice.amount_paid_minor - invoice.amount_credited_minor
    amount = Money(max(owed, 0), invoice.currency)
    reverse_write_off(session, invoice, at=at)
    payment = Payment(
        tenant_id=tenant.id,
        invoice_id=invoice.id,
        provider=provider,
        amount_minor=amount.minor,
        currency=amount.currency,
        status=PaymentStatus.SUCCEEDED,
        succeeded_at=at,
    )
    session.add(payment)
    session.flush()
    if amount.minor:
        record_movement(
            session,
            tenant,
            kind=MovementKind.PAYMENT,
            amount=-amount,
            description=f"Payment of invoice {invoice.number}",
            occurred_at=at,
            invoice_id=invoice.id,
            payment_id=payment.id,
        )
    invoice.amount_paid_minor += amount.minor
    invoice.status = InvoiceStatus.PAID
    invoice.paid_at = at
    session.flush()
    return payment


def reverse_write_off(session: Session, invoice: Invoice, *, at: dt.datetime) -> None:
    """Before a written-off invoice is paid after all: the ledger owes it again.

    The caller holds the invoice's lock; nothing happens unless it is uncollectible.
    """
    if invoice.status != InvoiceStatus.UNCOLLECTIBLE:
        return
    # Written off less what earlier reversals gave back (an invoice may be written off,
    # paid, marked unpaid and written off again); a write-off is negative, its reversal not.
    outstanding = -int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerMovement.amount_minor), 0)).where(
                LedgerMovement.invoice_id == invoice.id,
                LedgerMovement.payment_id.is_(None),
                LedgerMovement.kind.in_((MovementKind.WRITE_OFF, MovementKind.ADJUSTMENT)),
            )
        )
    )
    if outstanding > 0:
        record_movement(
            session,
            session.get_one(Tenant, invoice.tenant_id),
            kind=MovementKind.ADJUSTMENT,
            amount=Money(outstanding, invoice.currency),
            description=f"Write-off of invoice {invoice.number} reversed",
            occurred_at=at,
            invoice_id=invoice.id,
        )


def _close_unpaid(
    session: Session, invoice: Invoice, target: InvoiceStatus, kind: MovementKind, at: dt.datetime
) -> None:
    """Void or write off: what the ledger still holds as owed on the invoice is reversed."""
    lock(session, invoice)
    check_transition(invoice.status, target)
    # What the tenant still owes on this invoice: its total less payments and credit notes
    # (nothing once it has been written off, so voiding a written-off invoice books nothing).
    open_minor = (
        invoice.amount_due_minor - invoice.amount_paid_minor - invoice.amount_credited_minor
    )
    if open_minor > 0 and invoice.status in (InvoiceStatus.FINALIZED, InvoiceStatus.SENT):
        record_movement(
            session,
            session.get_one(Tenant, invoice.tenant_id),
            kind=kind,
            amount=Money(-open_minor, invoice.currency),
            description=f"{kind.value.replace('_', ' ').capitalize()} of invoice {invoice.number}",
            occurred_at=at,
            invoice_id=invoice.id,
        )
    invoice.status = target


def void_invoice(session: Session, invoice: Invoice, *, at: dt.datetime | None = None) -> Invoice:
    """Cancel an issued, unpaid invoice; its number stays used."""
    at = at or utcnow()
    _close_unpaid(session, invoice, InvoiceStatus.VOID, MovementKind.VOID, at)
    invoice.voided_at = at
    session.flush()
    return invoice


def mark_uncollectible(
    session: Session, invoice: Invoice, *, at: dt.datetime | None = None
) -> Invoice:
    """Write an unpaid invoice off."""
    at = at or utcnow()
    _close_unpaid(session, invoice, InvoiceStatus.UNCOLLECTIBLE, MovementKind.WRITE_OFF, at)
    invoice.uncollectible_at = at
    session.flush()
    return invoice


def mark_unpaid(session: Session, invoice: Invoice, *, at: dt.datetime | None = None) -> Invoice:
    """Undo "paid" (e.g. a bank transfer that bounced): payments are reversed in the ledger.

    :raise InvalidTransition: unless the invoice is paid (checked under lock).
    """
    lock(session, invoice)
    check_transition(invoice.status, InvoiceStatus.SENT)
    at = at or utcnow()
    tenant = session.get_one(Tenant, invoice.tenant_id)
    payments = session.scalars(
        sa.select(Payment)
        .where(Payment.invoice_id == invoice.id, Payment.status == PaymentStatus.SUCCEEDED)
        .with_for_update()
    ).all()
    for payment in payments:
        payment.status = PaymentStatus.CANCELED
        open_minor = payment.amount_minor - payment.refunded_minor
        if open_minor:
            record_movement(
                session,
                tenant,
                kind=MovementKind.ADJUSTMENT,
                amount=Money(open_minor, payment.currency),
                description=f"Payment of invoice {invoice.number} reversed",
                occurred_at=at,
                invoice_id=invoice.id,
                payment_id=payment.id,
            )
    invoice.amount_paid_minor = 0
    invoice.paid_at = None
    invoice.status = InvoiceStatus.SENT
    session.flush()
    return invoice
