"""The upcoming estimate is computed by the invoice planner, so at period end they agree."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from portal.catalog.models import PriceModel
from portal.extensions import db
from portal.invoices.estimates import estimate
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from tests.scenarios.conftest import D, record_usage, subscribe

API_TIERS = ((D(10000), D(0)), (D(100000), D("0.002")), (None, D("0.001")))


def _tenant(catalog, make_tenant):
    tenant = make_tenant("DE", discount="5")
    subscribe(
        tenant,
        [
            (catalog.price("Platform", PriceModel.FLAT, unit_amount=D("49.00")), 1),
            (catalog.price("Seats", PriceModel.PER_UNIT, unit_amount=D("12.00")), 4),
            (catalog.price("API", PriceModel.GRADUATED, tiers=API_TIERS, metric="api"), 0),
        ],
    )
    for day in range(1, 32):
        record_usage(tenant, "api", 3100, dt.date(2026, 10, day), f"d{day}")
    return tenant


def test_estimate_projects_month_to_date_usage(catalog, make_tenant):
    tenant = _tenant(catalog, make_tenant)
    # Noon on Oct 11: 10 usage days recorded before now (Oct 1–10) plus Oct 11 at noon.
    now = dt.datetime(2026, 10, 11, 12, tzinfo=dt.UTC)
    result = estimate(db.session, tenant, now)
    assert result.next_billing_date == dt.date(2026, 11, 1)
    assert result.elapsed == Fraction(10 * 24 + 12, 31 * 24)
    used = D(3100 * 10)  # records are at noon: the one of Oct 11 12:00 is not before `now`
    to_date_api = [li for li in result.to_date.lines if li.price_id and li.kind == "usage"]
    assert sum(li.quantity for li in to_date_api) == used
    projected_api = [li for li in result.projected.lines if li.kind == "usage"]
    # 31,000 calls in 252 of 744 hours → 91,523.809524 projected for the month
    assert sum(li.quantity for li in projected_api) == D("91523.809524")
    assert result.projected_totals.amount_due > result.to_date_totals.amount_due


def test_estimate_equals_the_finalized_invoice_at_period_end(catalog, make_tenant):
    tenant = _tenant(catalog, make_tenant)
    at_end = estimate(db.session, tenant, dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    [invoice] = generate_invoices(db.session, [tenant], "2026-10")
    finalize_invoice(db.session, invoice, issue_date=dt.date(2026, 11, 1))
    db.session.commit()
    assert at_end.elapsed == 1
    assert at_end.projected_totals.amount_due.minor == invoice.amount_due_minor
    assert at_end.projected_totals.tax.minor == invoice.tax_minor
    assert at_end.to_date_totals == at_end.projected_totals
    assert [(li.description, li.quantity, li.unit_price) for li in at_end.projected.lines] == [
        (li.description, li.quantity, li.unit_price) for li in invoice.lines
    ]


def test_no_subscription_no_estimate(make_tenant):
    assert estimate(db.session, make_tenant("DE"), dt.datetime(2026, 10, 5, tzinfo=dt.UTC)) is None
