"""Ledger reconciliation: recompute what the ledger and the stored amounts should say.

Every financial event is a ledger movement, and invoices and payments also store running
amounts (paid, credited, refunded). This module recomputes both from the documents
(invoices, credit notes, payments, refunds) and lists every place where they disagree:

- an invoice's ``amount_paid_minor`` against its succeeded payments, its
  ``amount_credited_minor`` against its issued credit notes, and a payment's
  ``refunded_minor`` against its refunds;
- each event's own movement: one ``invoice`` movement of the total per issued invoice,
  one ``credit_note`` movement per credit note, one ``payment`` movement per payment,
  one ``refund`` movement per refund, at most one ``void`` movement per invoice;
- what the ledger holds as owed on each invoice against what its state says is owed:
  nothing on a void or written-off invoice, else its total less payments and credit
  notes; refunds of payments that stand add back what was returned;
- each tenant's balance per currency against the sum of those amounts, and nothing in
  the ledger on a draft.

All of it is a handful of grouped queries, so it runs on the whole database at once.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, Session

from portal.db import utcnow
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.states import CreditNoteStatus, InvoiceStatus
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ops.models import Job, JobStatus
from portal.payments.models import Payment, PaymentStatus, Refund
from portal.tenancy.models import Tenant

#: The job kind under which each check's result is kept (the admin console shows the last).
LEDGER_CHECK = "ledger_check"

#: Invoice states in which nothing is owed any more, whatever was paid.
CLOSED_UNPAID = (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE)


@dataclass(frozen=True)
class Difference:
    """One disagreement: ``what`` of ``kind`` ``ref`` is ``actual`` but should be ``expected``."""

    kind: str  # "invoice", "credit note", "payment", "refund" or "tenant"
    ref: str  # its number, public id or handle
    what: str
    expected: int
    actual: int
    currency: str

    @property
    def subject(self) -> str:
        return f"{self.kind} {self.ref}"

    def __str__(self) -> str:
        return (
            f"{self.subject}: {self.what} is {self.actual} {self.currency}, "
            f"expected {self.expected} (minor units)"
        )


@dataclass
class Report:
    """What a reconciliation looked at and found."""

    checked_at: dt.datetime
    tenants: int = 0
    invoices: int = 0
    payments: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict:
        return {
            "checked_at": self.checked_at.isoformat(),
            "tenants": self.tenants,
            "invoices": self.invoices,
            "payments": self.payments,
            "differences": [asdict(d) for d in self.differences],
        }


def _sums(
    session: Session,
    key: QueryableAttribute[Any],
    amount: QueryableAttribute[int],
    *where: sa.ColumnElement[bool],
) -> dict[Any, int]:
    rows = session.execute(
        sa.select(key, sa.func.coalesce(sa.func.sum(amount), 0)).where(*where).group_by(key)
    )
    return {k: int(v) for k, v in rows}


def _counts(
    session: Session, key: QueryableAttribute[Any], *where: sa.ColumnElement[bool]
) -> dict[Any, int]:
    rows = session.execute(sa.select(key, sa.func.count()).where(*where).group_by(key))
    return {k: int(v) for k, v in rows}


def _movements(
    session: Session, kind: MovementKind, key: QueryableAttribute[Any]
) -> tuple[dict[Any, int], dict[Any, int]]:
    """Sum and count of the movements of one kind, by the linked object's id."""
    where = (LedgerMovement.kind == kind, key.is_not(None))
    return (
        _sums(session, key, LedgerMovement.amount_minor, *where),
        _counts(session, key, *where),
    )


def reconcile(session: Session) -> Report:
    """Recompute every tenant's balance and every invoice's amounts; list the differences."""
    report = Report(checked_at=utcnow())
    add = report.differences.append
    tenants = dict(session.execute(sa.select(Tenant.id, Tenant.slug)).tuples().all())
    report.tenants = len(tenants)

    # Payments: what stands, what was refunded, and their own movements.
    payments = session.execute(
        sa.select(
            Payment.id,
            Payment.public_id,
            Payment.invoice_id,
            Payment.status,
            Payment.amount_minor,
            Payment.refunded_minor,
            Payment.currency,
        )
    ).all()
    report.payments = len(payments)
    refunded = _sums(session, Refund.payment_id, Refund.amount_minor)
    refund_moves, refund_move_counts = _movements(
        session, MovementKind.REFUND, LedgerMovement.refund_id
    )
    refund_rows = session.execute(sa.select(Refund.id, Refund.amount_minor, Refund.currency)).all()
    for refund_id, amount, currency in refund_rows:
        if refund_move_counts.get(refund_id, 0) != 1 or refund_moves.get(refund_id) != amount:
            add(
                Difference(
                    "refund",
                    str(refund_id),
                    "ledger movement",
                    amount,
                    refund_moves.get(refund_id, 0),
                    currency,
                )
            )
    pay_moves, pay_move_counts = _movements(
        session, MovementKind.PAYMENT, LedgerMovement.payment_id
    )
    reversals, reversal_counts = _movements(
        session, MovementKind.ADJUSTMENT, LedgerMovement.payment_id
    )
    paid_by_invoice: dict[int, int] = defaultdict(int)
    returned_by_invoice: dict[int, int] = defaultdict(int)
    for pid, public_id, invoice_id, status, amount, refunded_minor, currency in payments:
        subject = ("payment", str(public_id))
        if refunded.get(pid, 0) != refunded_minor:
            add(
                Difference(
                    *subject, "refunded amount", refunded.get(pid, 0), refunded_minor, currency
                )
            )
        booked = status in (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED) and amount != 0
        if booked and (pay_move_counts.get(pid, 0) != 1 or pay_moves.get(pid) != -amount):
            add(Difference(*subject, "payment movement", -amount, pay_moves.get(pid, 0), currency))
        if not booked and pay_move_counts.get(pid, 0):
            add(Difference(*subject, "payment movement", 0, pay_moves.get(pid, 0), currency))
        reversal = amount - refunded_minor if status == PaymentStatus.CANCELED else 0
        if reversals.get(pid, 0) != reversal or reversal_counts.get(pid, 0) > 1:
            add(
                Difference(*subject, "reversal movement", reversal, reversals.get(pid, 0), currency)
            )
        if status == PaymentStatus.SUCCEEDED and invoice_id is not None:
            paid_by_invoice[invoice_id] += amount
            returned_by_invoice[invoice_id] += refunded_minor

    # Credit notes and their movements.
    credited = _sums(
        session,
        CreditNote.invoice_id,
        CreditNote.amount_due_minor,
        CreditNote.status == CreditNoteStatus.ISSUED,
    )
    note_moves, note_move_counts = _movements(
        session, MovementKind.CREDIT_NOTE, LedgerMovement.credit_note_id
    )
    notes = session.execute(
        sa.select(
            CreditNote.id, CreditNote.number, CreditNote.amount_due_minor, CreditNote.currency
        ).where(CreditNote.status == CreditNoteStatus.ISSUED)
    ).all()
    for note_id, number, amount, currency in notes:
        expected = -amount if amount else 0
        if note_move_counts.get(note_id, 0) != (1 if amount else 0) or (
            note_moves.get(note_id, 0) != expected
        ):
            add(
                Difference(
                    "credit note",
                    str(number),
                    "ledger movement",
                    expected,
                    note_moves.get(note_id, 0),
                    currency,
                )
            )

    # Invoices: stored amounts, their own movements, and what the ledger holds as owed.
    owed_in_ledger = _sums(
        session,
        LedgerMovement.invoice_id,
        LedgerMovement.amount_minor,
        LedgerMovement.invoice_id.is_not(None),
    )
    totals, total_counts = _movements(session, MovementKind.INVOICE, LedgerMovement.invoice_id)
    _, void_counts = _movements(session, MovementKind.VOID, LedgerMovement.invoice_id)
    expected_balance: dict[tuple[int, str], int] = defaultdict(int)
    invoices = session.execute(
        sa.select(
            Invoice.id,
            Invoice.tenant_id,
            Invoice.number,
            Invoice.status,
            Invoice.currency,
            Invoice.amount_due_minor,
            Invoice.amount_paid_minor,
            Invoice.amount_credited_minor,
        )
    ).all()
    report.invoices = len(invoices)
    for iid, tenant_id, number, status, currency, due, paid, credited_minor in invoices:
        subject = ("invoice", str(number or iid))
        if status == InvoiceStatus.DRAFT:
            if owed_in_ledger.get(iid, 0) or total_counts.get(iid, 0):
                add(
                    Difference(
                        *subject, "ledger on a draft", 0, owed_in_ledger.get(iid, 0), currency
                    )
                )
            continue
        if paid != paid_by_invoice.get(iid, 0):
            add(Difference(*subject, "amount paid", paid_by_invoice.get(iid, 0), paid, currency))
        if credited_minor != credited.get(iid, 0):
            add(
                Difference(
                    *subject, "amount credited", credited.get(iid, 0), credited_minor, currency
                )
            )
        if credited_minor > max(due, 0):
            add(Difference(*subject, "credited beyond the total", due, credited_minor, currency))
        if total_counts.get(iid, 0) != (1 if due else 0) or totals.get(iid, 0) != due:
            add(Difference(*subject, "invoice movement", due, totals.get(iid, 0), currency))
        if void_counts.get(iid, 0) > (1 if status == InvoiceStatus.VOID else 0):
            add(
                Difference(
                    *subject,
                    "void movements",
                    1 if status == InvoiceStatus.VOID else 0,
                    void_counts.get(iid, 0),
                    currency,
                )
            )
        owed = 0 if status in CLOSED_UNPAID else due - paid - credited_minor
        owed += returned_by_invoice.get(iid, 0)
        if owed_in_ledger.get(iid, 0) != owed:
            add(
                Difference(
                    *subject, "owed in the ledger", owed, owed_in_ledger.get(iid, 0), currency
                )
            )
        expected_balance[(tenant_id, currency)] += owed

    # Tenants: the balance recomputed from the documents, plus movements on no invoice.
    loose = session.execute(
        sa.select(
            LedgerMovement.tenant_id,
            LedgerMovement.currency,
            sa.func.sum(LedgerMovement.amount_minor),
        )
        .where(LedgerMovement.invoice_id.is_(None))
        .group_by(LedgerMovement.tenant_id, LedgerMovement.currency)
    )
    for tenant_id, currency, amount in loose:
        expected_balance[(tenant_id, currency)] += int(amount)
    balances = {
        (tenant_id, currency): int(amount)
        for tenant_id, currency, amount in session.execute(
            sa.select(
                LedgerMovement.tenant_id,
                LedgerMovement.currency,
                sa.func.sum(LedgerMovement.amount_minor),
            ).group_by(LedgerMovement.tenant_id, LedgerMovement.currency)
        )
    }
    for key in sorted(set(balances) | set(expected_balance)):
        tenant_id, currency = key
        if balances.get(key, 0) != expected_balance.get(key, 0):
            add(
                Difference(
                    "tenant",
                    str(tenants.get(tenant_id, tenant_id)),
                    "balance",
                    expected_balance.get(key, 0),
                    balances.get(key, 0),
                    currency,
                )
            )
    return report


def record_check(session: Session, report: Report, *, by: str) -> Job:
    """Keep a reconciliation's result as a finished job, for the admin console to show."""
    job = Job(
        kind=LEDGER_CHECK,
        status=JobStatus.SUCCEEDED,
        params={},
        progress_done=report.invoices,
        progress_total=report.invoices,
        result=report.as_dict(),
        created_by=by,
        started_at=report.checked_at,
        finished_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def last_check(session: Session) -> Job | None:
    """The latest recorded reconciliation, if any."""
    return session.scalars(
        sa.select(Job).where(Job.kind == LEDGER_CHECK).order_by(Job.id.desc()).limit(1)
    ).first()
