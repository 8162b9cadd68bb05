"""Issued documents are frozen: the ORM refuses changes, and so does PostgreSQL.

After finalization an invoice changes only through its lifecycle (status, payment and
delivery bookkeeping); everything printed on it stays as issued, and corrections go
through credit notes. Migration 0002 installs the same rule as triggers on PostgreSQL,
built from the column lists below (a test checks that both refuse every listed column).
Since migration 0009 the lines trigger lets the transaction that finalized an invoice
insert its lines (the invoice run writes invoices finalized, then their lines, in bulk
without the ORM); that transaction is recognized by ``finalized_at`` being its start time.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state

from portal.invoices.errors import DocumentFrozen
from portal.invoices.models import (
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceAllowanceCharge,
    InvoiceLine,
    InvoiceVatBreakdown,
)

#: What is printed on an issued invoice and may never change.
FROZEN_INVOICE_COLUMNS = (
    "tenant_id",
    "seller_id",
    "number",
    "kind",
    "currency",
    "period_start",
    "period_end",
    "issue_date",
    "due_date",
    "buyer_reference",
    "purchase_order",
    "note",
    "lines_total_minor",
    "allowance_total_minor",
    "charge_total_minor",
    "tax_exclusive_minor",
    "tax_minor",
    "tax_inclusive_minor",
    "prepaid_minor",
    "rounding_minor",
    "amount_due_minor",
    "seller_snapshot",
    "buyer_snapshot",
    "language",
    "finalized_at",
)
#: The same for credit notes.
FROZEN_CREDIT_NOTE_COLUMNS = (
    "tenant_id",
    "seller_id",
    "invoice_id",
    "number",
    "currency",
    "reason",
    "issue_date",
    "lines_total_minor",
    "tax_exclusive_minor",
    "tax_minor",
    "tax_inclusive_minor",
    "amount_due_minor",
    "seller_snapshot",
    "buyer_snapshot",
    "language",
    "issued_at",
)

_INVOICE_CHILDREN = (InvoiceLine, InvoiceVatBreakdown, InvoiceAllowanceCharge)


def _previous_status(obj: Invoice | CreditNote):
    """The status as stored before this flush (a finalization in progress is still a draft)."""
    history = instance_state(obj).attrs.status.history
    if history.deleted:
        return history.deleted[0]
    return obj.status


def _was_issued(obj: Invoice | CreditNote | None) -> bool:
    return obj is not None and instance_state(obj).persistent and _previous_status(obj) != "draft"


def _changed(obj, columns: tuple[str, ...]) -> list[str]:
    state = sa.inspect(obj)
    return [name for name in columns if state.attrs[name].history.has_changes()]


def _parent(session: Session, child) -> Invoice | CreditNote | None:
    if isinstance(child, CreditNoteLine):
        return child.credit_note or session.get(CreditNote, child.credit_note_id)
    invoice_id = child.invoice_id
    if invoice_id is None:
        return None
    return session.get(Invoice, invoice_id)


@event.listens_for(Session, "before_flush")
def refuse_changes_to_issued_documents(session: Session, flush_context, instances) -> None:
    for obj in session.dirty:
        if isinstance(obj, Invoice) and _was_issued(obj):
            if changed := _changed(obj, FROZEN_INVOICE_COLUMNS):
                raise DocumentFrozen(f"invoice {obj.number} is issued; cannot change {changed}")
        elif isinstance(obj, CreditNote) and _was_issued(obj):
            if changed := _changed(obj, FROZEN_CREDIT_NOTE_COLUMNS):
                raise DocumentFrozen(f"credit note {obj.number} is issued; cannot change {changed}")
    for obj in session.deleted:
        if isinstance(obj, Invoice | CreditNote) and _was_issued(obj):
            raise DocumentFrozen(f"{obj.number} is issued and cannot be deleted")
    touched = [
        *session.new,
        *session.deleted,
        *(o for o in session.dirty if session.is_modified(o)),
    ]
    for obj in touched:
        if isinstance(obj, (*_INVOICE_CHILDREN, CreditNoteLine)) and _was_issued(
            _parent(session, obj)
        ):
            raise DocumentFrozen(
                f"lines of an issued document cannot change ({type(obj).__name__})"
            )
