"""E-mails caused by events elsewhere: automatic sending, paid receipts, expiring cards.

The invoice services know nothing about e-mail: receivers of the invoice signals
(:mod:`portal.invoices.signals`, connected in :mod:`portal.wiring`) hear of the invoices that
a transaction finalizes or marks paid and, once the transaction commits, queues one task
for all of them (an invoice run commits hundreds at a time) that gives each invoice its own
session and queues the e-mail through the outbox. Each task is safe to run twice (the
outbox's dedupe keys and the invoice's status decide), an invoice that fails is retried on
its own without holding up the others, and a broken queue never breaks the transaction
that caused it.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from flask import has_app_context
from huey import crontab
from sqlalchemy.orm import Session

from portal.catalog.models import CompanyBillingSettings
from portal.extensions import db, queue
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.notifications.delivery import InvoiceNotSendable, send_invoice
from portal.notifications.emails import (
    card_expiring_key,
    send_card_expiring_email,
    send_invoice_paid_email,
)
from portal.notifications.models import OutboxEmail
from portal.ops.after_commit import after_commit_batch
from portal.ops.queue import each_in_own_session
from portal.payments.methods import EXPIRY_WARNING_DAYS, card_expiry
from portal.payments.models import PaymentMethod, PaymentMethodStatus

log = logging.getLogger(__name__)


# -- automatic sending after finalization ---------------------------------------------------


def auto_send_invoice(session: Session, invoice_id: int) -> str:
    """E-mail a finalized invoice when its company's settings send automatically.

    Returns what happened: "sent", "skipped" (not finalized any more, or not wanted) or the
    reason the invoice could not be sent (no billing address, e-invoice unavailable).
    """
    invoice = session.get(Invoice, invoice_id, with_for_update=True)
    if invoice is None or invoice.status != InvoiceStatus.FINALIZED:
        return "skipped"
    if not _sends_automatically(session, invoice.tenant_id):
        return "skipped"
    try:
        send_invoice(session, invoice)
    except InvoiceNotSendable as exc:
        session.rollback()
        log.warning("invoice %s not sent automatically: %s", invoice_id, exc.reason)
        return exc.reason
    session.commit()
    return "sent"


@queue.app_task(retries=3, retry_delay=60, retry_backoff=2)
def auto_send_invoice_task(invoice_id: int) -> str:
    """Queue task: :func:`auto_send_invoice` in its own session (one invoice's retry)."""
    with Session(db.engine) as session:
        return auto_send_invoice(session, invoice_id)


# -- receipts -------------------------------------------------------------------------------


def _sends_automatically(session: Session, tenant_id: int) -> bool:
    settings = session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant_id)
    ).first()
    return bool(settings and settings.auto_send)


def send_receipt(session: Session, invoice_id: int) -> str:
    """Queue the paid receipt of an invoice (once per time it is paid).

    A receipt answers an invoice the billing contact knows about: one that was e-mailed,
    or one of a company that e-mails invoices automatically (charged at finalization, it
    may be paid before its e-mail went out; the receipt then carries its PDF instead). An
    invoice an admin settles before it was ever sent stays silent.
    """
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.status != InvoiceStatus.PAID:
        return "skipped"
    if invoice.sent_at is None and not _sends_automatically(session, invoice.tenant_id):
        return "never_sent"
    email = send_invoice_paid_email(session, invoice)
    session.commit()
    return "queued" if email is not None else "no_recipient"


@queue.app_task(retries=3, retry_delay=60, retry_backoff=2)
def send_receipt_task(invoice_id: int) -> str:
    """Queue task: :func:`send_receipt` in its own session."""
    with Session(db.engine) as session:
        return send_receipt(session, invoice_id)


# -- one task per committed batch -----------------------------------------------------------

#: Seconds before an invoice that failed in a batch task is retried on its own.
RETRY_DELAY = 60


@queue.app_task(retries=3, retry_delay=60, retry_backoff=2)
def auto_send_invoices_task(invoice_ids: list[int]) -> dict[int, str]:
    """Queue task: :func:`auto_send_invoice` for each invoice a transaction finalized."""
    return each_in_own_session(
        db.engine, auto_send_invoice, invoice_ids, auto_send_invoice_task, RETRY_DELAY
    )


@queue.app_task(retries=3, retry_delay=60, retry_backoff=2)
def send_receipts_task(invoice_ids: list[int]) -> dict[int, str]:
    """Queue task: :func:`send_receipt` for each invoice a transaction marked paid."""
    return each_in_own_session(db.engine, send_receipt, invoice_ids, send_receipt_task, RETRY_DELAY)


def _enqueue(task, invoice_ids: list[int]) -> None:
    try:
        task(invoice_ids)
    except Exception:  # the cause is committed; a lost e-mail is logged, not raised
        log.exception("could not queue %s for invoices %s", task.name, invoice_ids)


def _enqueue_auto_send(invoice_ids: list[int]) -> None:
    _enqueue(auto_send_invoices_task, invoice_ids)


def _enqueue_receipts(invoice_ids: list[int]) -> None:
    _enqueue(send_receipts_task, invoice_ids)


def on_invoices_finalized(session: Session, invoice_ids: list[int]) -> None:
    """Receiver of :data:`~portal.invoices.signals.invoices_finalized`: queue automatic
    sending once the transaction commits, one task per commit carrying every invoice."""
    for invoice_id in invoice_ids:
        after_commit_batch(session, _enqueue_auto_send, invoice_id)


def on_invoices_paid(session: Session, invoice_ids: list[int]) -> None:
    """Receiver of :data:`~portal.invoices.signals.invoices_paid`: queue the receipts."""
    for invoice_id in invoice_ids:
        after_commit_batch(session, _enqueue_receipts, invoice_id)


# -- expiring cards -------------------------------------------------------------------------


def expiring_cards(session: Session, today: dt.date) -> list[tuple[PaymentMethod, dt.date]]:
    """Active cards whose last chargeable day is within the warning window from ``today``."""
    horizon = today + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    candidates = session.scalars(
        sa.select(PaymentMethod).where(
            PaymentMethod.status == PaymentMethodStatus.ACTIVE,
            PaymentMethod.exp_year.is_not(None),
            PaymentMethod.exp_month.is_not(None),
            # A coarse filter in SQL (the year), the exact day below.
            PaymentMethod.exp_year.between(today.year, horizon.year),
        )
    )
    found = []
    for method in candidates:
        expiry = card_expiry(method)
        if expiry is not None and today <= expiry <= horizon:
            found.append((method, expiry))
    return found


def send_card_expiry_notices(session: Session, today: dt.date | None = None) -> int:
    """Warn billing contacts about cards expiring within 30 days; once per card and expiry.

    Returns how many warnings were queued now (earlier ones are not counted again).
    """
    today = today or dt.date.today()
    queued = 0
    for method, expiry in expiring_cards(session, today):
        key = card_expiring_key(method, expiry)
        if session.scalar(sa.select(OutboxEmail.id).where(OutboxEmail.dedupe_key == key)):
            continue  # warned already for this card and expiry
        if send_card_expiring_email(session, method, expiry) is not None:
            queued += 1
        session.commit()
    return queued


@queue.periodic_task(crontab(minute="15", hour="6"))
def card_expiry_notices_task() -> int:
    """Periodic task (daily, run by the worker): :func:`send_card_expiry_notices`."""
    if has_app_context():
        with Session(db.engine) as session:
            return send_card_expiry_notices(session)
    with queue.flask_app.app_context(), Session(db.engine) as session:
        return send_card_expiry_notices(session)
