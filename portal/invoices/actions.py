"""Audited actions an operator takes on one invoice: paid state, void, send, credit, delete.

Each runs the invoice's own service under the row lock and appends an audit entry with
the state before and after; the admin pages and the console API both call these.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from portal.db import lock
from portal.invoices.credit_notes import CreditLine, CreditNoteRefused, issue_credit_note
from portal.invoices.drafts import delete_draft
from portal.invoices.lifecycle import mark_paid, mark_unpaid, void_invoice
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.states import TRANSITIONS, InvoiceStatus
from portal.notifications.delivery import InvoiceNotSendable, send_invoice
from portal.notifications.models import OutboxEmail
from portal.ops.audit import N_, Actor, AdminActionRefused, record_audit


def _invoice_state(invoice: Invoice) -> dict[str, Any]:
    return {
        "status": str(invoice.status),
        "number": invoice.number,
        "amount_paid_minor": invoice.amount_paid_minor,
        "amount_credited_minor": invoice.amount_credited_minor,
    }


def _audit_invoice(
    session: Session, actor: Actor, action: str, invoice: Invoice, before: dict, **extra: Any
) -> None:
    after = {**_invoice_state(invoice), **extra}
    record_audit(
        session,
        actor,
        action,
        "invoice",
        str(invoice.public_id),
        tenant_id=invoice.tenant_id,
        before=before,
        after=after,
    )


def change_paid_state(session: Session, invoice: Invoice, paid: bool, actor: Actor) -> Invoice:
    """Mark an issued invoice paid (a manual payment) or a paid one unpaid (reversed).

    Both record ledger movements (the payment, or its reversal) and an audit entry.

    :raise AdminActionRefused: ``already_paid``, ``not_paid`` or ``invalid_state``.
    """
    lock(session, invoice)
    before = _invoice_state(invoice)
    if paid:
        if invoice.status == InvoiceStatus.PAID:
            raise AdminActionRefused("already_paid", N_("This invoice is already paid."))
        if InvoiceStatus.PAID not in TRANSITIONS[invoice.status]:
            raise AdminActionRefused(
                "invalid_state", N_("Only finalized, sent or written-off invoices can be paid.")
            )
        mark_paid(session, invoice)
        _audit_invoice(session, actor, "invoice.mark_paid", invoice, before)
    else:
        if invoice.status != InvoiceStatus.PAID:
            raise AdminActionRefused("not_paid", N_("Only a paid invoice can be marked unpaid."))
        mark_unpaid(session, invoice)
        _audit_invoice(session, actor, "invoice.mark_unpaid", invoice, before)
    return invoice


def delete_draft_invoice(session: Session, invoice: Invoice, actor: Actor) -> None:
    """Delete a draft invoice; an issued one must be voided or credited instead.

    :raise AdminActionRefused: ``not_a_draft``.
    """
    lock(session, invoice)
    if invoice.status != InvoiceStatus.DRAFT:
        raise AdminActionRefused(
            "not_a_draft",
            N_("A finalized invoice cannot be deleted; void it or issue a credit note."),
        )
    before = _invoice_state(invoice)
    record_audit(
        session,
        actor,
        "invoice.delete_draft",
        "invoice",
        str(invoice.public_id),
        tenant_id=invoice.tenant_id,
        before=before,
    )
    delete_draft(session, invoice)


def void(session: Session, invoice: Invoice, actor: Actor) -> Invoice:
    """Void an issued, unpaid invoice (its number stays used; the ledger is reversed).

    :raise AdminActionRefused: ``is_draft`` or ``invalid_state``.
    """
    lock(session, invoice)
    if invoice.status == InvoiceStatus.DRAFT:
        raise AdminActionRefused("is_draft", N_("A draft cannot be voided; delete it instead."))
    if InvoiceStatus.VOID not in TRANSITIONS[invoice.status]:
        raise AdminActionRefused(
            "invalid_state", N_("Paid or void invoices cannot be voided; issue a credit note.")
        )
    before = _invoice_state(invoice)
    void_invoice(session, invoice)
    _audit_invoice(session, actor, "invoice.void", invoice, before)
    return invoice


#: Why an invoice cannot be sent, by the delivery module's reason.
_NOT_SENDABLE = {
    "draft": ("not_finalized", N_("A draft cannot be sent; finalize it first.")),
    "closed": ("closed", N_("Paid, void or written-off invoices are not sent again.")),
    "no_recipient": ("no_recipient", N_("The company has no billing e-mail address.")),
    "einvoice_unavailable": (
        "einvoice_unavailable",
        N_("The company's preferred e-invoice cannot be made for this invoice."),
    ),
}


def send(session: Session, invoice: Invoice, actor: Actor) -> OutboxEmail:
    """E-mail the invoice to the company (queued after commit); finalized becomes sent.

    :raise AdminActionRefused: ``not_finalized``, ``closed``, ``no_recipient`` or
        ``einvoice_unavailable``.
    """
    lock(session, invoice)
    before = _invoice_state(invoice)
    try:
        email = send_invoice(session, invoice)
    except InvoiceNotSendable as exc:
        code, message = _NOT_SENDABLE.get(exc.reason, ("not_sendable", str(exc)))
        raise AdminActionRefused(code, message) from exc
    _audit_invoice(session, actor, "invoice.send", invoice, before, to=list(email.to_addrs or []))
    return email


def credit(
    session: Session,
    invoice: Invoice,
    actor: Actor,
    *,
    reason: str,
    lines: Mapping[int, Decimal] | None = None,
) -> CreditNote:
    """Issue a credit note: the whole invoice (``lines`` None) or quantities by line position.

    :param lines: quantity to credit per invoice line position (1, 2, … as printed).
    :raise AdminActionRefused: ``credit_refused`` (with the reason) or ``unknown_line``.
    """
    lock(session, invoice)
    credit_lines = None
    if lines is not None:
        by_position = {line.position: line for line in invoice.lines}
        credit_lines = []
        for position, quantity in lines.items():
            if position not in by_position:
                raise AdminActionRefused("unknown_line", N_("The invoice has no such line."))
            credit_lines.append(CreditLine(by_position[position], Decimal(quantity)))
    before = _invoice_state(invoice)
    try:
        note = issue_credit_note(session, invoice, reason=reason, lines=credit_lines)
    except CreditNoteRefused as exc:
        raise AdminActionRefused("credit_refused", str(exc)) from exc
    _audit_invoice(
        session,
        actor,
        "invoice.credit",
        invoice,
        before,
        credit_note=note.number,
        credit_amount_minor=note.amount_due_minor,
        reason=note.reason,
    )
    return note
