"""Sending an issued invoice to the buyer: the e-mail and the move to "sent"."""

from __future__ import annotations

from sqlalchemy.orm import Session

from portal.db import lock, utcnow
from portal.invoices.errors import InvoiceError
from portal.invoices.lifecycle import mark_sent
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.notifications.emails import EInvoiceUnavailable, send_invoice_email
from portal.notifications.models import OutboxEmail

#: Invoices that may be (re-)sent: issued and not yet settled.
SENDABLE = frozenset({InvoiceStatus.FINALIZED, InvoiceStatus.SENT})


class InvoiceNotSendable(InvoiceError):
    """Why an invoice cannot be e-mailed: "draft", "closed", "no_recipient" or
    "einvoice_unavailable" (then ``detail`` says why the preferred e-invoice cannot be made).
    """

    def __init__(self, reason: str, detail: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def send_invoice(session: Session, invoice: Invoice) -> OutboxEmail:
    """Queue the invoice e-mail; a finalized invoice becomes sent, a sent one is re-sent.

    :raise InvoiceNotSendable: for drafts, settled or void invoices, or without a billing
        e-mail address.
    """
    lock(session, invoice)
    if invoice.status == InvoiceStatus.DRAFT:
        raise InvoiceNotSendable("draft")
    if invoice.status not in SENDABLE:
        raise InvoiceNotSendable("closed")
    try:
        email = send_invoice_email(session, invoice)
    except EInvoiceUnavailable as exc:
        raise InvoiceNotSendable("einvoice_unavailable", exc.reason) from exc
    except InvoiceError as exc:
        raise InvoiceNotSendable("no_recipient") from exc
    if invoice.status == InvoiceStatus.FINALIZED:
        mark_sent(session, invoice)
    else:
        invoice.sent_at = utcnow()  # re-sent: stays sent, remembers the last delivery
    session.flush()
    return email
