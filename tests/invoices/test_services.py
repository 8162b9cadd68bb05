"""Invoice services and the rules the database holds for them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.db import load_for_tenant, scoped
from portal.extensions import db
from portal.invoices.drafts import create_draft, recompute_totals
from portal.invoices.errors import InvoiceHasNoLines, InvoiceNotDraft
from portal.invoices.issuing import finalize_invoice
from portal.invoices.lifecycle import mark_paid, mark_sent, mark_uncollectible, void_invoice
from portal.invoices.models import Invoice
from portal.invoices.queries import open_amounts, recent_invoices
from portal.invoices.states import InvalidTransition, InvoiceKind, InvoiceStatus
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ledger.services import balance
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory


@pytest.fixture
def tenant(app):
    tenant = TenantFactory()
    BillingProfileFactory(tenant=tenant, payment_terms_days=30, buyer_reference="04011000-1234")
    db.session.commit()
    return tenant


def test_finalize_numbers_dates_snapshots_and_records_the_debt(session, tenant):
    invoice = make_invoice(tenant, finalize=False)
    assert invoice.status == InvoiceStatus.DRAFT and invoice.number is None
    assert invoice.amount_due_minor == 10294  # (49.00 + 37.50) × 1.19
    finalize_invoice(session, invoice, issue_date=dt.date(2026, 10, 1))
    session.commit()
    assert invoice.number == "INV-2026-00001"
    assert invoice.due_date == dt.date(2026, 10, 31)
    assert invoice.buyer_snapshot["company_name"] == tenant.name
    assert invoice.seller_snapshot["iban"] == "DE89370400440532013000"
    assert invoice.buyer_reference == "04011000-1234"
    movement = session.scalars(sa.select(LedgerMovement)).one()
    assert (movement.kind, movement.amount_minor) == (MovementKind.INVOICE, 10294)
    assert balance(session, tenant).minor == 10294


def test_numbers_are_gapless_per_seller_and_year(session):
    seller = SellerFactory()
    other_seller = SellerFactory()
    tenants = [
        TenantFactory(seller=seller),
        TenantFactory(seller=seller),
        TenantFactory(seller=other_seller),
    ]
    numbers = []
    for month in (1, 2):
        for tenant in tenants:
            invoice = make_invoice(
                tenant, period_start=dt.date(2026, month, 1), period_end=dt.date(2026, month, 28)
            )
            numbers.append((tenant.seller_id, invoice.number))
    late = make_invoice(
        tenants[0],
        period_start=dt.date(2026, 12, 1),
        period_end=dt.date(2026, 12, 31),
        issue_date=dt.date(2027, 1, 1),
    )
    session.commit()
    seller_numbers = [n for s, n in numbers if s == seller.id]
    assert seller_numbers == [f"INV-2026-0000{i}" for i in range(1, 5)]
    assert [n for s, n in numbers if s == other_seller.id] == ["INV-2026-00001", "INV-2026-00002"]
    assert late.number == "INV-2027-00001"


def test_rolled_back_finalization_gives_its_number_back(session, tenant):
    first = make_invoice(tenant, finalize=False)
    session.commit()
    finalize_invoice(session, first, issue_date=dt.date(2026, 10, 1))
    session.rollback()
    second = make_invoice(
        tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    session.commit()
    assert second.number == "INV-2026-00001"


def test_generation_is_idempotent_per_tenant_kind_and_period(session, tenant):
    first = make_invoice(tenant, finalize=False)
    again = create_draft(
        session,
        tenant,
        kind=InvoiceKind.SUBSCRIPTION,
        period_start=first.period_start,
        period_end=first.period_end,
        lines=[],
    )
    assert again.id == first.id
    usage = create_draft(
        session,
        tenant,
        kind=InvoiceKind.USAGE,
        period_start=first.period_start,
        period_end=first.period_end,
        lines=[],
    )
    assert usage.id != first.id
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 2


def test_database_refuses_a_second_invoice_for_the_same_period(session, tenant):
    invoice = make_invoice(tenant, finalize=False)
    session.commit()
    session.add(
        Invoice(
            tenant_id=tenant.id,
            seller_id=tenant.seller_id,
            kind=invoice.kind,
            currency="EUR",
            period_start=invoice.period_start,
            period_end=invoice.period_end,
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()
    session.rollback()


def test_database_refuses_a_duplicate_number_for_one_seller(session, tenant):
    invoice = make_invoice(tenant)
    session.commit()
    session.add(
        Invoice(
            tenant_id=tenant.id,
            seller_id=tenant.seller_id,
            kind=InvoiceKind.MANUAL,
            currency="EUR",
            number=invoice.number,
        )
    )
    with pytest.raises(sa.exc.IntegrityError, match="number"):
        session.commit()
    session.rollback()


def test_database_refuses_an_issued_invoice_without_number(session, tenant):
    invoice = make_invoice(tenant, finalize=False)
    session.commit()
    with pytest.raises(sa.exc.IntegrityError, match="issued_has"):
        session.execute(sa.update(Invoice).where(Invoice.id == invoice.id).values(status="sent"))
        session.commit()
    session.rollback()


def test_database_refuses_negative_paid_amounts(session, tenant):
    invoice = make_invoice(tenant)
    session.commit()
    with pytest.raises(sa.exc.IntegrityError, match="amount_paid_non_negative"):
        session.execute(
            sa.update(Invoice).where(Invoice.id == invoice.id).values(amount_paid_minor=-1)
        )
        session.commit()
    session.rollback()


def test_issued_invoices_are_frozen(session, tenant):
    invoice = make_invoice(tenant)
    with pytest.raises(InvoiceNotDraft):
        recompute_totals(invoice)
    with pytest.raises(InvalidTransition):
        finalize_invoice(session, invoice, issue_date=dt.date(2026, 10, 2))


def test_empty_draft_cannot_be_finalized(session, tenant):
    draft = create_draft(
        session,
        tenant,
        kind=InvoiceKind.MANUAL,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 1, 31),
        lines=[],
    )
    with pytest.raises(InvoiceHasNoLines):
        finalize_invoice(session, draft, issue_date=dt.date(2026, 2, 1))


def test_lifecycle_moves_record_ledger_movements(session, tenant):
    paid = make_invoice(tenant)
    mark_sent(session, paid)
    payment = mark_paid(session, paid)
    assert payment.amount_minor == paid.amount_due_minor
    assert paid.amount_open_minor == 0
    voided = make_invoice(
        tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    void_invoice(session, voided)
    written_off = make_invoice(
        tenant, period_start=dt.date(2026, 11, 1), period_end=dt.date(2026, 11, 30)
    )
    mark_sent(session, written_off)
    mark_uncollectible(session, written_off)
    session.commit()
    kinds = session.scalars(sa.select(LedgerMovement.kind).order_by(LedgerMovement.id)).all()
    assert kinds == [
        MovementKind.INVOICE,
        MovementKind.PAYMENT,
        MovementKind.INVOICE,
        MovementKind.VOID,
        MovementKind.INVOICE,
        MovementKind.WRITE_OFF,
    ]
    assert balance(session, tenant).minor == 0
    with pytest.raises(InvalidTransition):
        mark_paid(session, voided)


def test_open_amounts_and_visible_invoices(session, tenant):
    overdue = make_invoice(
        tenant, period_start=dt.date(2026, 8, 1), period_end=dt.date(2026, 8, 31)
    )
    current = make_invoice(tenant)
    draft = make_invoice(
        tenant, finalize=False, period_start=dt.date(2026, 11, 1), period_end=dt.date(2026, 11, 30)
    )
    session.commit()
    amounts = open_amounts(session, tenant, today=dt.date(2026, 10, 15))
    assert amounts.open.minor == overdue.amount_due_minor + current.amount_due_minor
    assert amounts.overdue.minor == overdue.amount_due_minor
    assert (amounts.open_count, amounts.overdue_count) == (2, 1)
    assert draft not in recent_invoices(session, tenant)
    from portal.catalog.models import CompanyBillingSettings

    session.add(CompanyBillingSettings(tenant_id=tenant.id, show_drafts_to_tenant=True))
    session.commit()
    assert draft in recent_invoices(session, tenant)


def test_tenant_scoped_loading_answers_404_for_other_tenants(session, tenant):
    from werkzeug.exceptions import NotFound

    other = TenantFactory()
    invoice = make_invoice(tenant)
    assert load_for_tenant(session, Invoice, str(invoice.public_id), tenant) is invoice
    for bad in (str(invoice.public_id), "not-a-uuid", None, 42):
        with pytest.raises(NotFound):
            load_for_tenant(session, Invoice, bad, other)
    with pytest.raises(TypeError):
        scoped(SellerFactory._meta.model, tenant)


def test_exact_decimals_survive_the_database(session, tenant):
    from portal.usage.models import UsageRecord

    def usage(quantity: str, key: str, day: int) -> UsageRecord:
        record = UsageRecord(
            tenant_id=tenant.id,
            metric="gb",
            quantity=Decimal(quantity),
            occurred_at=dt.datetime(2026, 1, day, tzinfo=dt.UTC),
            idempotency_key=key,
        )
        session.add(record)
        return record

    usage("0.000001", "a", 1)
    usage("1234567.5", "b", 2)
    session.commit()
    total = session.scalar(sa.select(sa.func.sum(UsageRecord.quantity)))
    assert total == Decimal("1234567.500001")
    with pytest.raises(sa.exc.StatementError):  # more decimals than the column holds
        usage("0.0000001", "c", 3)
        session.flush()
    session.rollback()
    with pytest.raises(sa.exc.IntegrityError):  # the same idempotency key twice
        usage("1", "a", 3)
        session.commit()
    session.rollback()
    loaded = session.scalars(scoped(UsageRecord, tenant).order_by(UsageRecord.id)).first()
    assert loaded.occurred_at.tzinfo is not None
