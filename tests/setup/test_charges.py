"""One-off charges: on the next periodic invoice (billed once) or issued now."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.models import OneOffCharge
from portal.catalog.subscriptions import NewItem, create_subscription
from portal.db import utcnow
from portal.extensions import db
from portal.invoices.charges import ChargeRefused, NewCharge, add_charge
from portal.invoices.generation import ChargeAlreadyBilled, claim_charges
from portal.invoices.models import Invoice
from portal.invoices.run import run_invoices
from portal.invoices.states import InvoiceKind, InvoiceStatus, LineKind
from portal.ops.models import AuditLogEntry
from tests.setup.subs_support import ACTOR, D, Shop, new_shop

OCT = dt.date(2026, 10, 1)


@pytest.fixture
def shop(app) -> Shop:
    return new_shop()


def _subscribed(shop):
    tenant = shop.company()
    create_subscription(
        db.session,
        tenant,
        ACTOR,
        items=[NewItem(shop.flat, D(1))],
        start=OCT,
        today=dt.date(2026, 10, 2),
    )
    return tenant


def test_next_invoice_charge_is_billed_once_by_the_run(shop):
    tenant = _subscribed(shop)
    charge = add_charge(
        db.session,
        tenant,
        ACTOR,
        NewCharge("Setup", "2", "149.90", timing="next_invoice"),
        today=dt.date(2026, 10, 3),
    )
    db.session.commit()
    assert charge.invoice_id is None
    run_invoices(db.session, "2026-10")
    (invoice,) = db.session.scalars(sa.select(Invoice)).all()
    assert [(li.kind, li.description, li.net_amount_minor) for li in invoice.lines] == [
        (LineKind.SUBSCRIPTION, "Base", 3000),
        (LineKind.MANUAL, "Setup", 29980),
    ]
    assert invoice.amount_due_minor == 32980 + 6266  # 19 % of 329.80 = 62.662
    db.session.refresh(charge)
    assert charge.invoice_id == invoice.id
    run_invoices(db.session, "2026-11")  # the next period does not bill it again
    november = db.session.scalars(
        sa.select(Invoice).where(Invoice.period_start == dt.date(2026, 11, 1))
    ).one()
    assert [li.description for li in november.lines] == ["Base"]


def test_a_charge_is_claimed_once(shop):
    tenant = _subscribed(shop)
    charge = add_charge(db.session, tenant, ACTOR, NewCharge("Setup", "1", "10"))
    db.session.commit()
    run_invoices(db.session, "2026-10")
    invoice = db.session.scalars(sa.select(Invoice)).one()
    with pytest.raises(ChargeAlreadyBilled):
        claim_charges(db.session, [([charge.id], invoice.id)])
    db.session.rollback()


def test_a_charge_waits_for_a_periodic_invoice(shop):
    tenant = shop.company()
    add_charge(db.session, tenant, ACTOR, NewCharge("Consulting", "3", "100"))
    db.session.commit()
    run_invoices(db.session, "2026-10")
    assert db.session.scalars(sa.select(Invoice)).all() == []


def test_now_issues_an_invoice_of_its_own(shop):
    tenant = shop.company()
    charge = add_charge(
        db.session,
        tenant,
        ACTOR,
        NewCharge("Hardware", "1", "99.99", tax_treatment="goods", timing="now"),
        today=dt.date(2026, 10, 7),
    )
    db.session.commit()
    invoice = db.session.get(Invoice, charge.invoice_id)
    assert invoice.kind == InvoiceKind.MANUAL
    assert invoice.status == InvoiceStatus.FINALIZED and invoice.number
    assert invoice.issue_date == dt.date(2026, 10, 7)
    assert invoice.amount_due_minor == 9999 + 1900  # 19 % of 99.99 = 18.9981
    # A second one the same day is another invoice.
    again = add_charge(
        db.session,
        tenant,
        ACTOR,
        NewCharge("Cable", "2", "5", timing="now"),
        today=dt.date(2026, 10, 7),
    )
    assert again.invoice_id != charge.invoice_id
    entry = db.session.scalars(sa.select(AuditLogEntry)).first()
    assert entry.action == "charge.create" and entry.data["after"]["unit_price"] == "99.99"


def test_exempt_charge(shop):
    tenant = shop.company()
    charge = add_charge(
        db.session,
        tenant,
        ACTOR,
        NewCharge("Training", "1", "500", timing="now", vat_exemption_reason="Education"),
    )
    line = db.session.get(Invoice, charge.invoice_id).lines[0]
    assert (line.vat_category.value, line.vat_rate, line.vat_exemption_reason) == (
        "E",
        0,
        "Education",
    )


@pytest.mark.parametrize(
    ("new", "code", "field"),
    [
        (NewCharge("", "1", "1"), "description_required", "description"),
        (NewCharge("\x00 ", "1", "1"), "description_required", "description"),
        (NewCharge("x" * 501, "1", "1"), "text_too_long", "description"),
        (NewCharge("x", "0", "1"), "quantity_not_positive", "quantity"),
        (NewCharge("x", "-1", "1"), "quantity_not_positive", "quantity"),
        (NewCharge("x", "abc", "1"), "invalid_number", "quantity"),
        (NewCharge("x", "NaN", "1"), "invalid_number", "quantity"),
        (NewCharge("x", 1.5, "1"), "invalid_number", "quantity"),
        (NewCharge("x", "1e30", "1"), "invalid_number", "quantity"),
        (NewCharge("x", "1", "-0.01"), "negative_price", "unit_price"),
        # A unit price the exact-decimal columns cannot hold on SQLite (found by schemathesis).
        (NewCharge("x", "29", "1269813225"), "invalid_number", "unit_price"),
        # Each number within bounds, their product (the line's amount) not.
        (NewCharge("x", "100000000", "99999"), "invalid_number", "unit_price"),
        (NewCharge("x", "1", "1", tax_treatment="food"), "invalid_choice", "tax_treatment"),
        (NewCharge("x", "1", "1", timing="later"), "invalid_choice", "timing"),
        (NewCharge(5, "1", "1"), "invalid_text", "description"),
    ],
)
def test_bad_charges_are_refused_and_nothing_is_written(shop, new, code, field):
    tenant = shop.company()
    db.session.commit()
    with pytest.raises(ChargeRefused) as refused:
        add_charge(db.session, tenant, ACTOR, new)
    assert (refused.value.code, refused.value.field) == (code, field)
    db.session.rollback()
    assert db.session.scalars(sa.select(OneOffCharge)).all() == []


def test_archived_company_is_refused(shop):
    tenant = shop.company()
    tenant.archived_at = utcnow()
    with pytest.raises(ChargeRefused) as refused:
        add_charge(db.session, tenant, ACTOR, NewCharge("x", "1", "1"))
    assert refused.value.code == "company_archived"
