"""Credit notes, refunds, the paid/unpaid switch and deleting drafts, computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.models import PriceModel
from portal.domain.money import Money
from portal.extensions import db
from portal.invoices.credit_notes import CreditLine, CreditNoteRefused, issue_credit_note
from portal.invoices.drafts import delete_draft
from portal.invoices.errors import DocumentFrozen, InvoiceNotDraft
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.invoices.lifecycle import mark_paid, mark_unpaid, void_invoice
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ledger.services import balance
from portal.payments.refunds import RefundRefused, refund_payment
from portal.usage.models import Quota
from portal.usage.queries import quota_usage_report
from tests.scenarios.conftest import D, record_usage, subscribe


@pytest.fixture
def invoice(catalog, make_tenant) -> Invoice:
    tenant = make_tenant("DE")
    subscribe(
        tenant,
        [
            (catalog.price("Platform", PriceModel.FLAT, unit_amount=D("49.00")), 1),
            (catalog.price("Seats", PriceModel.PER_UNIT, unit_amount=D("12.00")), 8),
        ],
    )
    [invoice] = generate_invoices(db.session, [tenant], "2026-10")
    finalize_invoice(db.session, invoice, issue_date=dt.date(2026, 11, 1))
    db.session.commit()
    assert invoice.amount_due_minor == 17255  # 145.00 + 19 % (27.55)
    return invoice


def test_partial_then_full_credit(invoice):
    seats = invoice.lines[1]
    first = issue_credit_note(
        db.session,
        invoice,
        reason="2 seats unused",
        lines=[CreditLine(seats, D(2))],
        issue_date=dt.date(2026, 11, 3),
    )
    # 2 × 12.00 = 24.00, VAT 4.56 → 28.56; the invoice has 143.99 open
    assert first.number == "CN-2026-00001"
    assert (first.tax_exclusive_minor, first.tax_minor, first.amount_due_minor) == (2400, 456, 2856)
    assert invoice.amount_open_minor == 14399
    assert invoice.status == InvoiceStatus.FINALIZED
    # The rest: 49.00 + 6 × 12.00 = 121.00, VAT 22.99 → 143.99: the invoice is settled.
    rest = issue_credit_note(
        db.session, invoice, reason="Cancelled", issue_date=dt.date(2026, 11, 4)
    )
    assert rest.number == "CN-2026-00002"
    assert rest.amount_due_minor == 14399
    assert [(li.description, li.quantity) for li in rest.lines] == [
        ("Platform", D(1)),
        ("Seats", D(6)),
    ]
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_open_minor == 0
    db.session.commit()
    kinds = db.session.execute(
        sa.select(LedgerMovement.kind, LedgerMovement.amount_minor).order_by(LedgerMovement.id)
    ).all()
    assert kinds == [
        (MovementKind.INVOICE, 17255),
        (MovementKind.CREDIT_NOTE, -2856),
        (MovementKind.CREDIT_NOTE, -14399),
    ]
    assert balance(db.session, invoice_tenant(invoice)).minor == 0
    with pytest.raises(CreditNoteRefused, match="nothing is left"):
        issue_credit_note(db.session, invoice, reason="again")


def invoice_tenant(invoice):
    from portal.tenancy.models import Tenant

    return db.session.get(Tenant, invoice.tenant_id)


def test_credit_refusals(invoice, catalog, make_tenant):
    with pytest.raises(CreditNoteRefused, match="left to credit"):
        issue_credit_note(
            db.session, invoice, reason="x", lines=[CreditLine(invoice.lines[1], D(9))]
        )
    with pytest.raises(CreditNoteRefused, match="reason"):
        issue_credit_note(db.session, invoice, reason="  ")
    tenant = make_tenant("DE")
    subscribe(tenant, [(catalog.price("P2", PriceModel.FLAT, unit_amount=D(10)), 1)])
    [draft] = generate_invoices(db.session, [tenant], "2026-10")
    with pytest.raises(CreditNoteRefused, match="draft"):
        issue_credit_note(db.session, draft, reason="x")
    with pytest.raises(CreditNoteRefused, match="belong"):
        issue_credit_note(db.session, invoice, reason="x", lines=[CreditLine(draft.lines[0], D(1))])
    void_invoice(db.session, invoice)
    with pytest.raises(CreditNoteRefused, match="void"):
        issue_credit_note(db.session, invoice, reason="x")


def test_issued_credit_note_is_frozen(invoice):
    note = issue_credit_note(
        db.session, invoice, reason="Goodwill", lines=[CreditLine(invoice.lines[0], D(1))]
    )
    db.session.commit()
    note.reason = "changed"
    with pytest.raises(DocumentFrozen):
        db.session.flush()
    db.session.rollback()


def test_refunds_against_a_paid_invoice(invoice):
    payment = mark_paid(db.session, invoice, at=dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    refund = refund_payment(db.session, payment, Money(5000, "EUR"), reason="Downgrade")
    assert refund.status == "succeeded" and payment.refunded_minor == 5000
    tenant = invoice_tenant(invoice)
    assert balance(db.session, tenant).minor == 5000  # money returned: +50.00
    with pytest.raises(RefundRefused, match="only"):
        refund_payment(db.session, payment, Money(12256, "EUR"))
    with pytest.raises(RefundRefused, match="positive"):
        refund_payment(db.session, payment, Money(0, "EUR"))
    with pytest.raises(RefundRefused, match="EUR"):
        refund_payment(db.session, payment, Money(100, "USD"))
    refund_payment(db.session, payment, Money(12255, "EUR"))
    assert payment.refunded_minor == payment.amount_minor


def test_paid_unpaid_switch_reverses_the_payment(invoice):
    mark_paid(db.session, invoice, at=dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    tenant = invoice_tenant(invoice)
    assert balance(db.session, tenant).minor == 0
    mark_unpaid(db.session, invoice)
    assert invoice.status == InvoiceStatus.SENT and invoice.amount_open_minor == 17255
    assert balance(db.session, tenant).minor == 17255
    mark_paid(db.session, invoice)
    assert balance(db.session, tenant).minor == 0


def test_only_drafts_can_be_deleted(invoice, catalog, make_tenant):
    with pytest.raises(InvoiceNotDraft):
        delete_draft(db.session, invoice)
    tenant = make_tenant("DE")
    subscribe(tenant, [(catalog.price("P3", PriceModel.FLAT, unit_amount=D(10)), 1)])
    [draft] = generate_invoices(db.session, [tenant], "2026-10")
    delete_draft(db.session, draft)
    db.session.commit()
    assert db.session.get(Invoice, draft.id) is None


def test_quota_usage_report(catalog, make_tenant):
    tenant = make_tenant("DE")
    db.session.add_all(
        [
            Quota(tenant_id=tenant.id, metric="api", limit=D(1000), is_hard=True),
            Quota(tenant_id=tenant.id, metric="gb", limit=D(50)),
        ]
    )
    record_usage(tenant, "api", 700, dt.date(2026, 10, 1), "a")
    record_usage(tenant, "api", 500, dt.date(2026, 10, 20), "b")
    record_usage(tenant, "api", 900, dt.date(2026, 11, 2), "outside")
    record_usage(tenant, "seats", 3, dt.date(2026, 10, 2), "c")
    rows = quota_usage_report(
        db.session,
        [tenant.id],
        dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    )
    summary = [(r.metric, r.limit, r.used, r.percent, r.over, r.is_hard) for r in rows]
    assert summary == [
        ("api", D(1000), D(1200), D("120.0"), True, True),
        ("gb", D(50), D(0), D("0.0"), False, False),
        ("seats", None, D(3), None, False, False),
    ]
