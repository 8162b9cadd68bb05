"""Credit notes: full or partial corrections of issued invoices, with their own numbers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import lock, utcnow
from portal.domain.money import Money
from portal.domain.totals import LineInput, compute_totals
from portal.invoices.errors import InvoiceError
from portal.invoices.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from portal.invoices.numbering import next_number
from portal.invoices.states import CreditNoteStatus, DocumentType, InvoiceStatus
from portal.ledger.models import MovementKind
from portal.ledger.services import record_movement
from portal.tenancy.models import Seller, Tenant


class CreditNoteRefused(InvoiceError):
    """The credit asked for is not possible (draft or void invoice, more than invoiced)."""


@dataclass(frozen=True)
class CreditLine:
    """Credit ``quantity`` of one invoice line."""

    invoice_line: InvoiceLine
    quantity: Decimal


def credited_quantities(session: Session, invoice: Invoice) -> dict[int, Decimal]:
    """Quantity already credited per invoice line, by issued credit notes."""
    rows = session.execute(
        sa.select(CreditNoteLine.invoice_line_id, sa.func.sum(CreditNoteLine.quantity))
        .join(CreditNote, CreditNote.id == CreditNoteLine.credit_note_id)
        .where(CreditNote.invoice_id == invoice.id, CreditNote.status == CreditNoteStatus.ISSUED)
        .group_by(CreditNoteLine.invoice_line_id)
    )
    return {line_id: quantity for line_id, quantity in rows}


def issue_credit_note(
    session: Session,
    invoice: Invoice,
    *,
    reason: str,
    lines: list[CreditLine] | None = None,
    issue_date: dt.date | None = None,
) -> CreditNote:
    """Issue a credit note for the whole invoice (``lines`` None) or for some line quantities.

    It gets the next number of the seller's credit-note sequence, the invoice's frozen
    seller and buyer data, a ledger movement, and reduces what is open on the invoice; an
    open invoice whose remainder is fully credited counts as paid.

    :raise CreditNoteRefused: for a draft or void invoice, a line of another invoice, a
        non-positive quantity, or more than is left to credit (checked under the
        invoice's lock, so concurrent credit notes never credit more than the invoice).
    """
    lock(session, invoice)
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
        raise CreditNoteRefused(f"a {invoice.status} invoice cannot be credited")
    if not reason.strip():
        raise CreditNoteRefused("a credit note needs a reason")
    already = credited_quantities(session, invoice)
    if lines is None:
        lines = [
            CreditLine(li, li.quantity - already.get(li.id, Decimal(0))) for li in invoice.lines
        ]
        lines = [cl for cl in lines if cl.quantity != 0]
    if not lines:
        raise CreditNoteRefused("nothing is left to credit on this invoice")
    for credit in lines:
        line = credit.invoice_line
        if line.invoice_id != invoice.id:
            raise CreditNoteRefused("a credited line must belong to the invoice")
        left = line.quantity - already.get(line.id, Decimal(0))
        if (
            credit.quantity == 0
            or abs(credit.quantity) > abs(left)
            or (credit.quantity * line.quantity < 0)
        ):
            raise CreditNoteRefused(
                f"line {line.position}: {credit.quantity} asked, {left} left to credit"
            )
    issue_date = issue_date or dt.date.today()
    totals = compute_totals(
        [
            LineInput(
                c.quantity,
                c.invoice_line.unit_price,
                c.invoice_line.vat_category.value,
                c.invoice_line.vat_rate,
            )
            for c in lines
        ],
        invoice.currency,
    )
    open_minor = invoice.amount_due_minor - invoice.amount_credited_minor
    if totals.amount_due.minor > open_minor:
        raise CreditNoteRefused("the credit would exceed the invoice total")
    note = CreditNote(
        tenant_id=invoice.tenant_id,
        seller_id=invoice.seller_id,
        invoice_id=invoice.id,
        currency=invoice.currency,
        reason=reason.strip(),
        language=invoice.language,
        seller_snapshot=invoice.seller_snapshot,
        buyer_snapshot=invoice.buyer_snapshot,
        lines_total_minor=totals.lines_total.minor,
        tax_exclusive_minor=totals.tax_exclusive.minor,
        tax_minor=totals.tax.minor,
        tax_inclusive_minor=totals.tax_inclusive.minor,
        amount_due_minor=totals.amount_due.minor,
        lines=[
            CreditNoteLine(
                tenant_id=invoice.tenant_id,
                position=position,
                kind=c.invoice_line.kind,
                description=c.invoice_line.description,
                quantity=c.quantity,
                unit_code=c.invoice_line.unit_code,
                unit_price=c.invoice_line.unit_price,
                net_amount_minor=net.minor,
                period_start=c.invoice_line.period_start,
                period_end=c.invoice_line.period_end,
                vat_category=c.invoice_line.vat_category,
                vat_rate=c.invoice_line.vat_rate,
                vat_exemption_reason=c.invoice_line.vat_exemption_reason,
                vat_exemption_code=c.invoice_line.vat_exemption_code,
                price_id=c.invoice_line.price_id,
                invoice_line_id=c.invoice_line.id,
            )
            for position, (c, net) in enumerate(zip(lines, totals.line_nets, strict=True), 1)
        ],
    )
    session.add(note)
    session.flush()
    seller = session.get_one(Seller, invoice.seller_id)
    note.number = next_number(session, seller, DocumentType.CREDIT_NOTE, issue_date.year)
    note.issue_date = issue_date
    note.issued_at = utcnow()
    note.status = CreditNoteStatus.ISSUED
    invoice.amount_credited_minor += note.amount_due_minor
    record_movement(
        session,
        session.get_one(Tenant, invoice.tenant_id),
        kind=MovementKind.CREDIT_NOTE,
        amount=Money(-note.amount_due_minor, note.currency),
        description=f"Credit note {note.number} for invoice {invoice.number}",
        occurred_at=note.issued_at,
        invoice_id=invoice.id,
        credit_note_id=note.id,
    )
    if invoice.status.is_open and invoice.amount_open_minor == 0:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = note.issued_at
    session.flush()
    return note
