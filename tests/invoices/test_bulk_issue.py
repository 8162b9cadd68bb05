"""The invoice run writes invoices in bulk (Core inserts, one UPDATE to finalize): the rows
must be exactly those of the ORM path (create_draft + finalize_invoices), frozen alike."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings, PriceModel
from portal.catalog.services import change_subscription_item
from portal.extensions import db
from portal.invoices.generation import generate_invoices, issue_invoices
from portal.invoices.issuing import (
    NewInvoice,
    finalize_invoices,
    insert_invoices,
)
from portal.invoices.models import (
    Invoice,
    InvoiceAllowanceCharge,
    InvoiceLine,
    InvoiceVatBreakdown,
)
from portal.invoices.signals import invoices_finalized
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.ledger.models import LedgerMovement
from portal.tenancy.models import Tenant
from tests.conftest import ON_POSTGRES
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory
from tests.scenarios.conftest import Catalog, D, record_usage, subscribe

ISSUED = dt.date(2026, 11, 1)
API_TIERS = ((D(10000), D(0)), (D(100000), D("0.002")), (None, D("0.001")))


@pytest.fixture
def tenants(app):
    """Tenants of two sellers covering what the planner and finalization decide."""
    seller = SellerFactory(country="DE", vat_id="DE811907980")
    other_seller = SellerFactory(country="DE", vat_id="DE136695976")
    catalog = Catalog(seller)
    platform = catalog.price("Platform", PriceModel.FLAT, unit_amount=D("49.00"))
    seats = catalog.price("Seats", PriceModel.PER_UNIT, unit_amount=D("12.00"))
    api = catalog.price("API calls", PriceModel.GRADUATED, tiers=API_TIERS, metric="api")

    def tenant(country="DE", vat_id=None, *, seller=seller, profile=True, **settings):
        made = TenantFactory(seller=seller)
        if profile:
            BillingProfileFactory(
                tenant=made,
                country=country,
                vat_id=vat_id,
                buyer_reference="04011000-12345-34" if country == "DE" else None,
                payment_terms_days=21,
            )
        if settings:
            db.session.add(CompanyBillingSettings(tenant_id=made.id, **settings))
        db.session.flush()
        return made

    made = []
    domestic = tenant("DE", "DE136695976")
    subscribe(domestic, [(platform, 1), (seats, 8), (api, 0)])
    record_usage(domestic, "api", 200000, dt.date(2026, 10, 3), "a")
    made.append(domestic)
    discounted = tenant("DE", discount_percent=D("12.5"), payment_terms_days=45)
    subscribe(discounted, [(platform, 1), (seats, 3)])
    made.append(discounted)
    reverse_charge = tenant("FR", "FR40303265045")
    subscribe(reverse_charge, [(platform, 1), (seats, 2)])
    made.append(reverse_charge)
    consumer = tenant("AT", seller=other_seller)
    subscribe(consumer, [(platform, 1)])
    made.append(consumer)
    upgraded = tenant("DE")
    subscription = subscribe(upgraded, [(platform, 1), (seats, 5)])
    change_subscription_item(
        db.session, subscription.items[1], on=dt.date(2026, 10, 16), quantity=D(8)
    )
    made.append(upgraded)
    trial = tenant("DE", seller=other_seller)
    subscribe(trial, [(platform, 1)], trial_end=dt.date(2026, 10, 11))
    made.append(trial)
    no_profile = tenant(profile=False)
    subscribe(no_profile, [(seats, 2)])
    made.append(no_profile)
    manual = tenant("DE", auto_finalize=False)
    subscribe(manual, [(platform, 1)])
    made.append(manual)
    db.session.commit()
    return made


def _rows(model, exclude=()) -> list[dict]:
    """Every row of ``model`` (invoice ids replaced by the invoice's tenant and period),
    without keys and times that differ by nature."""
    table = model.__table__
    skip = {"id", "public_id", "created_at", "updated_at", "finalized_at", *exclude}
    columns = [c for c in table.c if c.name not in skip]
    if "invoice_id" in table.c:
        invoices = Invoice.__table__
        columns = [c for c in columns if c.name != "invoice_id"]
        query = (
            sa.select(invoices.c.tenant_id, invoices.c.period_start, *columns)
            .select_from(table)
            .join(invoices, invoices.c.id == table.c.invoice_id)
        )
    else:
        query = sa.select(*columns)
    rows = db.session.execute(query).mappings().all()
    return sorted((dict(row) for row in rows), key=repr)


def _everything() -> dict[str, list[dict]]:
    return {
        "invoices": _rows(Invoice),
        "lines": _rows(InvoiceLine),
        "allowances": _rows(InvoiceAllowanceCharge),
        "vat": _rows(InvoiceVatBreakdown),
        "ledger": _rows(LedgerMovement, exclude={"occurred_at"}),
    }


def test_bulk_rows_equal_the_orm_path(tenants):
    manual = {tenants[-1].id}
    drafts = generate_invoices(db.session, tenants, "2026-10", issue_date=ISSUED)
    finalize_invoices(
        db.session, [i for i in drafts if i.tenant_id not in manual], issue_date=ISSUED
    )
    db.session.flush()
    by_orm = _everything()
    db.session.rollback()  # numbers given back: the sequence is gapless

    tenants = [db.session.get(Tenant, t.id) for t in tenants]
    created, finalized = issue_invoices(
        db.session, tenants, "2026-10", issue_date=ISSUED, keep_drafts=manual
    )
    assert (created, finalized) == (8, 7)
    by_bulk = _everything()  # before the commit, whose tasks try to collect
    for name, rows in by_orm.items():
        assert len(by_bulk[name]) == len(rows), name
        for bulk_row, orm_row in zip(by_bulk[name], rows, strict=True):
            assert {k: v for k, v in bulk_row.items() if orm_row[k] != v} == {}, (name, orm_row)
    assert len(by_orm["invoices"]) == 8 and len(by_orm["ledger"]) == 7
    assert len(by_orm["allowances"]) == 1  # the discount
    db.session.commit()
    numbers = db.session.scalars(
        sa.select(Invoice.number).where(Invoice.number.is_not(None)).order_by(Invoice.id)
    ).all()
    # Per seller, in tenant order, from 1: tenants 4 and 6 belong to the other seller.
    assert numbers == [f"INV-2026-{n:05d}" for n in (1, 2, 3, 1, 4, 2, 5)]
    statuses = db.session.scalars(sa.select(Invoice.status).order_by(Invoice.id)).all()
    assert statuses == [InvoiceStatus.FINALIZED] * 7 + [InvoiceStatus.DRAFT]
    finalized_at = set(db.session.scalars(sa.select(Invoice.finalized_at)))
    assert None in finalized_at and len(finalized_at) == 2  # one time for the batch


def test_existing_drafts_are_finalized_and_kept(tenants):
    [draft] = generate_invoices(db.session, tenants[:1], "2026-10")
    db.session.commit()
    created, finalized = issue_invoices(db.session, tenants[:2], "2026-10", issue_date=ISSUED)
    db.session.commit()
    assert (created, finalized) == (2, 2)
    db.session.refresh(draft)
    assert draft.status == InvoiceStatus.FINALIZED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 2


def test_receivers_hear_the_finalized_ids(tenants):
    heard = []

    def receiver(session, invoice_ids):
        heard.append(list(invoice_ids))

    with invoices_finalized.connected_to(receiver):
        issue_invoices(
            db.session, tenants, "2026-10", issue_date=ISSUED, keep_drafts={tenants[0].id}
        )
    ids = db.session.scalars(
        sa.select(Invoice.id).where(Invoice.status == InvoiceStatus.FINALIZED).order_by(Invoice.id)
    ).all()
    assert heard == [ids] and len(ids) == 7
    db.session.rollback()


def test_an_empty_invoice_is_not_finalized(tenants):
    from portal.invoices.errors import InvoiceHasNoLines

    new = NewInvoice(
        tenant=tenants[0],
        kind=InvoiceKind.MANUAL,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
        lines=[],
        finalize=True,
    )
    with pytest.raises(InvoiceHasNoLines):
        insert_invoices(db.session, [new], issue_date=ISSUED)
    assert insert_invoices(db.session, [], issue_date=ISSUED) == ([], [])


@pytest.mark.skipif(not ON_POSTGRES, reason="the SQL triggers exist on PostgreSQL")
def test_bulk_issued_invoices_are_frozen_in_sql(tenants):
    issue_invoices(db.session, tenants, "2026-10", issue_date=ISSUED)
    db.session.commit()
    invoice_id = db.session.scalar(sa.select(sa.func.min(Invoice.id)))
    for statement in (
        "UPDATE invoice_lines SET net_amount_minor = 1 WHERE invoice_id = :id",
        "INSERT INTO invoice_vat_breakdowns (invoice_id, category, rate, taxable_minor, "
        "tax_minor) VALUES (:id, 'Z', 0, 0, 0)",
        "UPDATE invoices SET amount_due_minor = 1 WHERE id = :id",
    ):
        with pytest.raises(sa.exc.IntegrityError, match="frozen"):
            db.session.execute(sa.text(statement), {"id": invoice_id})
        db.session.rollback()


@pytest.mark.skipif(not ON_POSTGRES, reason="the SQL triggers exist on PostgreSQL")
def test_only_the_finalizing_transaction_may_add_lines_in_sql(tenants):
    line = (
        "INSERT INTO invoice_lines (tenant_id, invoice_id, position, kind, description, "
        "quantity, unit_code, unit_price, net_amount_minor, vat_category, vat_rate, details) "
        "VALUES (:tenant, :id, 99, 'manual', 'x', 1, 'C62', 1, 100, 'S', 19, '{}')"
    )
    # The ORM path stamps finalized_at with the time of day, not the transaction's start:
    # even the transaction that finalized the invoice cannot add a line in SQL.
    [draft] = generate_invoices(db.session, tenants[:1], "2026-10")
    finalize_invoices(db.session, [draft], issue_date=ISSUED)
    with pytest.raises(sa.exc.IntegrityError, match="frozen"):
        db.session.execute(sa.text(line), {"tenant": draft.tenant_id, "id": draft.id})
    db.session.rollback()
    # The bulk path's own transaction may (that is how it writes the lines), later ones not.
    issue_invoices(db.session, tenants[:1], "2026-10", issue_date=ISSUED)
    invoice = db.session.scalars(sa.select(Invoice)).one()
    db.session.execute(sa.text(line), {"tenant": invoice.tenant_id, "id": invoice.id})
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError, match="frozen"):
        db.session.execute(
            sa.text(line.replace("99", "100")), {"tenant": invoice.tenant_id, "id": invoice.id}
        )
    db.session.rollback()


def test_the_run_sets_the_collector_back(tenants):
    import gc

    from portal.invoices.run import run_invoices

    assert gc.get_freeze_count() == 0
    result = run_invoices(db.session, "2026-10", issue_date=ISSUED)
    assert (result.created, result.finalized) == (8, 7)
    assert gc.get_freeze_count() == 0  # older objects are collectable again
