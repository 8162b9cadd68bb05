"""What happens to invoices, told to whoever listens: blinker signals, sent inside the
transaction that causes them.

The invoice services know nothing of e-mail or collection. They change invoices; these
signals tell receivers (connected in :mod:`portal.wiring`) the ids of the invoices that a
transaction finalizes or marks paid, with the session as sender, so each receiver can
register its after-commit work in that transaction. Invoices changed through the ORM are
noticed by a flush listener (:func:`watch_invoices`); the invoice run's bulk inserts bypass
the ORM and send :data:`invoices_finalized` themselves.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from blinker import Namespace
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus

_signals = Namespace()

#: Sent with ``invoice_ids=[...]`` (the session is the sender) when a flush finalizes invoices
#: or the invoice run issues them in bulk.
invoices_finalized = _signals.signal("invoices-finalized")
#: Sent with ``invoice_ids=[...]`` when a flush marks invoices paid.
invoices_paid = _signals.signal("invoices-paid")


def _status_changes(session: Session, flush_context: Any, instances: Any) -> None:
    finalized: list[int] = []
    paid: list[int] = []
    for obj in list(session.dirty) + list(session.new):
        if not isinstance(obj, Invoice) or obj.id is None:
            continue
        added = sa.inspect(obj).attrs.status.history.added or ()
        if InvoiceStatus.FINALIZED in added and obj.status == InvoiceStatus.FINALIZED:
            finalized.append(obj.id)
        elif InvoiceStatus.PAID in added and obj.status == InvoiceStatus.PAID:
            paid.append(obj.id)
    if finalized:
        invoices_finalized.send(session, invoice_ids=finalized)
    if paid:
        invoices_paid.send(session, invoice_ids=paid)


def watch_invoices() -> None:
    """Send the signals for invoices that ORM flushes finalize or mark paid (idempotent)."""
    if not event.contains(Session, "before_flush", _status_changes):
        event.listen(Session, "before_flush", _status_changes)
