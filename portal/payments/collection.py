"""Collecting invoices with the default method, and dunning when a collection fails.

An invoice is charged once it is finalized (when the company's billing settings collect
automatically); a failed attempt is retried after 1, 3, 5 and 7 days, each failure is
e-mailed to the billing contact, and the invoice is written off after the last try.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from flask import current_app
from huey import crontab
from sqlalchemy.orm import Session

from portal.catalog.models import CompanyBillingSettings
from portal.db import lock, utcnow
from portal.domain.money import Money
from portal.extensions import db, queue
from portal.invoices.lifecycle import mark_uncollectible, reverse_write_off
from portal.invoices.models import Invoice
from portal.invoices.states import OPEN_STATUSES, InvoiceStatus, check_transition
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ledger.services import record_movement
from portal.notifications.outbox import queue_email
from portal.ops.after_commit import after_commit_batch
from portal.ops.models import TaskClaim
from portal.ops.queue import each_in_own_session
from portal.ops.sweeper import SweepWindow
from portal.payments.methods import default_method
from portal.payments.models import Payment, PaymentStatus
from portal.payments.providers import ProviderError, UnknownProvider, get_provider
from portal.tenancy.models import BillingProfile, Tenant

log = logging.getLogger(__name__)

#: Days to wait after failed attempt 1, 2, 3 and 4; attempt 5 is the last.
RETRY_DAYS = (1, 3, 5, 7)
MAX_ATTEMPTS = len(RETRY_DAYS) + 1


def should_collect(session: Session, invoice: Invoice) -> bool:
    """Whether the invoice is charged automatically: the company's settings decide, else the
    invoice's own flag."""
    settings = session.scalars(
        sa.select(CompanyBillingSettings).where(
            CompanyBillingSettings.tenant_id == invoice.tenant_id
        )
    ).first()
    return settings.auto_collect if settings is not None else bool(invoice.auto_collect)


def _in_flight(session: Session, invoice: Invoice) -> bool:
    return (
        session.execute(
            sa.select(sa.func.count())
            .select_from(Payment)
            .where(
                Payment.invoice_id == invoice.id,
                Payment.status.in_([PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION]),
            )
        ).scalar_one()
        > 0
    )


def collect_invoice(
    session: Session, invoice: Invoice, *, now: dt.datetime | None = None
) -> Payment | None:
    """Charge the open amount of ``invoice`` with the tenant's default method.

    Does nothing (returns None) for an invoice that is not open, has nothing to pay, has
    an attempt in flight, or whose tenant's default method belongs to a provider that is
    not configured here. A tenant without a default method counts as a failed attempt.
    The invoice stays locked through the charge, so two collections never both charge.
    """
    lock(session, invoice)
    if not invoice.status.is_open or invoice.amount_open_minor <= 0:
        return None
    if _in_flight(session, invoice):
        return None
    tenant = session.get_one(Tenant, invoice.tenant_id)
    method = default_method(session, tenant)
    if method is None:
        invoice.attempt_count += 1
        _attempt_failed(session, invoice, None, "There is no default payment method.", now)
        return None
    try:
        provider = get_provider(method.provider)
    except UnknownProvider:
        log.info("invoice %s: provider %s is not configured", invoice.id, method.provider)
        return None
    payment = provider.charge(session, invoice, method)
    invoice.attempt_count += 1
    invoice.next_attempt_at = None
    session.flush()
    payment_updated(session, payment, now=now)
    return payment


def payment_updated(session: Session, payment: Payment, *, now: dt.datetime | None = None) -> None:
    """Act on a payment's new status: mark paid, ask for 3-D Secure, or schedule a retry."""
    invoice = session.get(Invoice, payment.invoice_id) if payment.invoice_id else None
    if invoice is None:
        return
    if payment.status == PaymentStatus.SUCCEEDED:
        record_payment(session, invoice, payment)
    elif payment.status == PaymentStatus.REQUIRES_ACTION:
        _ask_for_action(session, invoice, payment)
    elif payment.status == PaymentStatus.FAILED and invoice.status.is_open:
        if payment.attempt == invoice.attempt_count:  # an older attempt's news changes nothing
            _attempt_failed(session, invoice, payment, payment.failure_message, now)


def record_payment(session: Session, invoice: Invoice, payment: Payment) -> None:
    """Book a succeeded provider payment: a ledger movement and the invoice marked paid.

    Under the invoice's lock, so the webhook and the customer's return from the provider
    arriving at once book the payment once: the second finds the invoice paid (or the
    payment already booked) and changes nothing.
    """
    lock(session, invoice)
    if invoice.status not in (*OPEN_STATUSES, InvoiceStatus.UNCOLLECTIBLE):
        return
    already = session.scalar(
        sa.select(LedgerMovement.id).where(
            LedgerMovement.payment_id == payment.id, LedgerMovement.kind == MovementKind.PAYMENT
        )
    )
    if already is not None:
        return
    at = payment.succeeded_at or utcnow()
    reverse_write_off(session, invoice, at=at)
    record_movement(
        session,
        session.get_one(Tenant, invoice.tenant_id),
        kind=MovementKind.PAYMENT,
        amount=-Money(payment.amount_minor, payment.currency),
        description=f"Payment of invoice {invoice.number}",
        occurred_at=at,
        invoice_id=invoice.id,
        payment_id=payment.id,
    )
    invoice.amount_paid_minor += payment.amount_minor
    if invoice.amount_paid_minor + invoice.amount_credited_minor >= invoice.amount_due_minor:
        check_transition(invoice.status, InvoiceStatus.PAID)
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = at
    invoice.next_attempt_at = None
    session.flush()


def _attempt_failed(
    session: Session,
    invoice: Invoice,
    payment: Payment | None,
    reason: str | None,
    now: dt.datetime | None = None,
) -> None:
    attempt = invoice.attempt_count
    final = attempt >= MAX_ATTEMPTS
    if final:
        invoice.next_attempt_at = None
        mark_uncollectible(session, invoice)
    else:
        invoice.next_attempt_at = (now or utcnow()) + dt.timedelta(days=RETRY_DAYS[attempt - 1])
    session.flush()
    _email(
        session,
        invoice,
        "payment_failed",
        f"payment-failed:{invoice.public_id}:{attempt}",
        attempt=attempt,
        final=final,
        reason=reason,
        next_attempt_on=invoice.next_attempt_at.date() if invoice.next_attempt_at else None,
        methods_url=absolute_url("/payment-methods"),
    )


def _ask_for_action(session: Session, invoice: Invoice, payment: Payment) -> None:
    payment.action_url = absolute_url(f"/payment-methods/payments/{payment.public_id}")
    session.flush()
    _email(
        session,
        invoice,
        "payment_action_required",
        f"payment-action:{payment.public_id}",
        action_url=payment.action_url,
    )


def _email(session: Session, invoice: Invoice, template: str, key: str, **context) -> None:
    profile = session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == invoice.tenant_id)
    ).first()
    if profile is None or not profile.billing_email:
        return
    queue_email(
        session,
        template=template,
        to=[profile.billing_email],
        cc=[a for a in (profile.cc_emails or []) if a != profile.billing_email],
        dedupe_key=key,
        locale=profile.language or "en",
        tenant_id=invoice.tenant_id,
        context={
            "invoice": invoice,
            "contact_name": profile.contact_name or profile.company_name or "",
            "amount": Money(
                invoice.amount_open_minor or invoice.amount_due_minor, invoice.currency
            ),
            **context,
        },
    )


def absolute_url(path: str) -> str:
    return current_app.config.get("PUBLIC_BASE_URL", "").rstrip("/") + path


def due_invoices(session: Session, now: dt.datetime) -> list[int]:
    """Ids of open invoices whose next collection attempt is due at ``now``."""
    return list(
        session.scalars(
            sa.select(Invoice.id)
            .where(
                Invoice.status.in_([InvoiceStatus.FINALIZED, InvoiceStatus.SENT]),
                Invoice.next_attempt_at.is_not(None),
                Invoice.next_attempt_at <= now,
            )
            .order_by(Invoice.next_attempt_at)
        )
    )


def collect_due_invoices(session: Session, now: dt.datetime | None = None) -> int:
    """Retry every invoice whose next attempt is due; commits per invoice. Returns the count."""
    count = 0
    now = now or utcnow()
    for invoice_id in due_invoices(session, now):
        invoice = session.get_one(Invoice, invoice_id, with_for_update=True)
        try:
            collect_invoice(session, invoice, now=now)
            session.commit()
            count += 1
        except ProviderError:
            session.rollback()
            log.exception("collection of invoice %s failed", invoice_id)
    return count


# -- the queue ----------------------------------------------------------------------------


#: Kind of the claim (``task_claims``) a collection commits before the provider charges.
COLLECTION = "collection"
#: Invoices finalized longer ago than this are not collected by the sweeper.
SWEEP_HORIZON = dt.timedelta(days=3)


def _claim_of(session: Session, invoice_id: int) -> TaskClaim | None:
    return session.scalars(
        sa.select(TaskClaim).where(TaskClaim.kind == COLLECTION, TaskClaim.key == str(invoice_id))
    ).first()


def _release_claim(session: Session, invoice_id: int) -> None:
    session.execute(
        sa.delete(TaskClaim).where(TaskClaim.kind == COLLECTION, TaskClaim.key == str(invoice_id))
    )


def collect_new_invoice(session: Session, invoice_id: int) -> str:
    """Charge a newly finalized invoice when its company collects automatically; commits.

    Safe to repeat: an invoice with an attempt already made is skipped. A charge cannot be
    taken back, so a claim is committed before the provider is called and deleted with the
    payment that records its outcome. A worker that dies in between leaves the claim: the
    task then answers "unresolved" instead of charging again, and the sweeper reports the
    invoice for someone to check at the provider.
    """
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        return "skipped"
    lock(session, invoice)
    if (
        invoice.attempt_count
        or not invoice.status.is_open
        or invoice.amount_open_minor <= 0
        or not should_collect(session, invoice)
    ):
        session.rollback()
        return "skipped"
    claim = _claim_of(session, invoice_id)
    if claim is not None:
        session.rollback()
        return "in_progress" if claim.lease_until > utcnow() else "unresolved"
    lease = dt.timedelta(seconds=int(current_app.config.get("TASK_LEASE_SECONDS", 300)))
    session.add(TaskClaim(kind=COLLECTION, key=str(invoice_id), lease_until=utcnow() + lease))
    session.commit()  # the claim is durable before the provider is asked to charge
    try:
        invoice = lock(session, session.get_one(Invoice, invoice_id))
    except Exception:  # nothing was charged yet
        session.rollback()
        _release_claim(session, invoice_id)
        session.commit()
        raise
    try:
        # Re-checked in the lock: another path (dunning, "pay now") may have charged it.
        payment = None if invoice.attempt_count else collect_invoice(session, invoice)
        _release_claim(session, invoice_id)
        session.commit()
    except ProviderError:  # the provider refused: nothing charged, the queue retries
        session.rollback()
        _release_claim(session, invoice_id)
        session.commit()
        raise
    except Exception:
        session.rollback()
        log.error(
            "collection of invoice %s failed once the provider was called; the claim stays "
            "(whether it charged is unknown) and the invoice is not charged again",
            invoice_id,
        )
        raise
    return str(payment.status) if payment else "none"


#: Seconds before an invoice whose collection failed in a batch task is retried alone.
RETRY_DELAY = 300


@queue.app_task(retries=3, retry_delay=RETRY_DELAY)
def collect_invoice_task(invoice_id: int) -> str:
    """Queue task: :func:`collect_new_invoice` in its own session (one invoice's retry).

    Uses its own session: in immediate mode it runs in the finalizing session's
    after-commit hook.
    """
    with Session(db.engine) as session:
        return collect_new_invoice(session, invoice_id)


@queue.app_task(retries=3, retry_delay=RETRY_DELAY)
def collect_invoices_task(invoice_ids: list[int]) -> dict[int, str]:
    """Queue task: :func:`collect_new_invoice` for each invoice a transaction finalized,
    each in its own session; one that fails is retried alone (collect_invoice_task)."""
    return each_in_own_session(
        db.engine, collect_new_invoice, invoice_ids, collect_invoice_task, RETRY_DELAY
    )


@queue.periodic_task(crontab(minute="*/30"))
def collect_due_invoices_task() -> int:
    """Periodic task (run by the worker): retry the collections that are due."""
    from flask import has_app_context

    if has_app_context():
        with Session(db.engine) as session:
            return collect_due_invoices(session)
    with queue.flask_app.app_context(), Session(db.engine) as session:
        return collect_due_invoices(session)


def _sweepable(session: Session, invoice: Invoice) -> bool:
    """Whether a collection queued now would charge (not merely find nothing to do)."""
    if not should_collect(session, invoice):
        return False
    method = default_method(session, session.get_one(Tenant, invoice.tenant_id))
    if method is None:
        return True  # counts as a failed attempt, which starts dunning
    try:
        get_provider(method.provider)
    except UnknownProvider:
        return False
    return True


def sweep_collections(session: Session, window: SweepWindow) -> int:
    """Queue again the collection of invoices whose task was lost; returns how many.

    Such an invoice is open, finalized more than the grace ago (and at most
    ``SWEEP_HORIZON`` ago), and shows no trace of a collection: no attempt, no dunning date,
    no payment, no claim. An expired claim is reported once (logged as an error) and left.
    """
    for claim in session.scalars(
        sa.select(TaskClaim).where(
            TaskClaim.kind == COLLECTION,
            TaskClaim.lease_until < window.now,
            TaskClaim.reported_at.is_(None),
        )
    ):
        log.error(
            "invoice %s: the worker charging it stopped after claiming it (at %s); check at "
            "the provider whether it was charged, then delete task claim %s",
            claim.key,
            claim.claimed_at.isoformat(),
            claim.id,
        )
        claim.reported_at = window.now
    session.commit()
    claimed = sa.select(TaskClaim.id).where(
        TaskClaim.kind == COLLECTION, TaskClaim.key == sa.cast(Invoice.id, sa.String)
    )
    paid = sa.select(Payment.id).where(Payment.invoice_id == Invoice.id)
    candidates = session.scalars(
        sa.select(Invoice)
        .where(
            Invoice.status.in_([InvoiceStatus.FINALIZED, InvoiceStatus.SENT]),
            Invoice.attempt_count == 0,
            Invoice.next_attempt_at.is_(None),
            Invoice.finalized_at < window.queued_before,
            Invoice.finalized_at >= window.now - SWEEP_HORIZON,
            Invoice.amount_due_minor > Invoice.amount_paid_minor + Invoice.amount_credited_minor,
            ~paid.exists(),
            ~claimed.exists(),
        )
        .order_by(Invoice.id)
        .limit(window.limit)
    ).all()
    invoice_ids = [invoice.id for invoice in candidates if _sweepable(session, invoice)]
    session.rollback()
    for invoice_id in invoice_ids:
        collect_invoice_task(invoice_id)
    return len(invoice_ids)


def _enqueue_collection(invoice_ids: list[int]) -> None:
    try:
        collect_invoices_task(invoice_ids)
    except Exception:  # a broken queue must not break the finalization that caused it
        log.exception("could not queue collection of invoices %s", invoice_ids)


def on_invoices_finalized(session: Session, invoice_ids: list[int]) -> None:
    """Receiver of :data:`~portal.invoices.signals.invoices_finalized`: queue the collection
    of those invoices once the transaction commits, one task per commit carrying them all."""
    for invoice_id in invoice_ids:
        after_commit_batch(session, _enqueue_collection, invoice_id)
