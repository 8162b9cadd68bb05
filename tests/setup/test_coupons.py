"""Coupons: validation, allowances on invoices (hand-computed, every price model), every
document format, and the count of invoices that used them."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from lxml import etree
from sqlalchemy.orm import Session

from portal.catalog.coupons import (
    add_coupon,
    archive_coupon,
    count_coupon_uses,
    create_coupon,
    remove_coupon,
    subscription_coupons,
)
from portal.catalog.models import (
    Coupon,
    SubscriptionCoupon,
)
from portal.catalog.products import CatalogInvalid, create_price, create_product
from portal.documents.formats import render_document
from portal.documents.pdf import document_rows
from portal.extensions import db
from portal.invoices.drafts import DraftLine
from portal.invoices.estimates import estimate
from portal.invoices.generation import PlannedCoupon, coupon_allowance_rows, generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import Invoice, InvoiceLine
from portal.invoices.run import run_invoices
from portal.invoices.states import VatCategory
from tests.conftest import ON_POSTGRES
from tests.documents.conftest_einvoice import einvoice_seller
from tests.setup.catalog_support import ACTOR, D, audit_actions, company, count, subscribe, use

ISSUE = dt.date(2026, 11, 1)


@pytest.fixture
def app_config(app_config):
    app_config["EINVOICE_VALIDATOR"] = "off"
    return app_config


@pytest.fixture
def seller(app):
    return einvoice_seller()


@pytest.fixture
def product(seller):
    return create_product(db.session, seller, {"code": "cloud", "name": "Cloud"}, ACTOR)


def _coupon(seller, code="C", **fields):
    return create_coupon(
        db.session, seller, {"code": code, "name": f"Coupon {code}", **fields}, ACTOR
    )


PERCENT = {"percent_off": "20"}
FIXED = {"amount_off_minor": 1000, "currency": "EUR"}


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"percent_off": "0"}, "percent_off"),
        ({"percent_off": "101"}, "percent_off"),
        ({"percent_off": "-5"}, "percent_off"),
        ({"percent_off": "12.34567"}, "percent_off"),
        ({"percent_off": "1e30"}, "percent_off"),
        ({"percent_off": "NaN"}, "percent_off"),
        ({"percent_off": "10", "currency": "EUR"}, "currency"),
        ({}, "percent_off"),
        ({"percent_off": "10", "amount_off_minor": 100, "currency": "EUR"}, "percent_off"),
        ({"amount_off_minor": 0, "currency": "EUR"}, "amount_off_minor"),
        ({"amount_off_minor": 10**30, "currency": "EUR"}, "amount_off_minor"),
        ({"amount_off_minor": "1.5", "currency": "EUR"}, "amount_off_minor"),
        ({"amount_off_minor": 100}, "currency"),
        ({"amount_off_minor": 100, "currency": "XYZ"}, "currency"),
        ({"percent_off": "10", "duration": "sometimes"}, "duration"),
        ({"percent_off": "10", "duration": "repeating"}, "duration_periods"),
        ({"percent_off": "10", "duration": "repeating", "duration_periods": 0}, "duration_periods"),
        ({"percent_off": "10", "name": "a\x00"}, "name"),
        ({"percent_off": "10", "code": "a b"}, "code"),
        ({"percent_off": "10", "extra": True}, "extra"),
    ],
)
def test_bad_coupons_are_refused_and_write_nothing(seller, fields, field):
    values = {"code": "X", "name": "X", **fields}
    with pytest.raises(CatalogInvalid) as refused:
        create_coupon(db.session, seller, values, ACTOR)
    assert field in refused.value.errors, refused.value.errors
    assert count(Coupon) == 0 and audit_actions() == []


def test_coupon_codes_are_unique_per_seller_and_archiving_keeps_them_applied(seller, product):
    coupon = _coupon(seller, "LAUNCH", percent_off="100")
    assert coupon.percent_off == D(100)
    with pytest.raises(CatalogInvalid) as refused:
        _coupon(seller, "LAUNCH", **PERCENT)
    assert "code" in refused.value.errors
    price = create_price(
        db.session,
        product,
        {
            "code": "f",
            "nickname": "Platform",
            "currency": "EUR",
            "model": "flat",
            "unit_amount": "49",
        },
        ACTOR,
    )
    tenant = company(seller)
    subscription = subscribe(tenant, [(price, 1)])
    add_coupon(db.session, subscription, coupon, ACTOR)
    archive_coupon(db.session, coupon, ACTOR)
    archive_coupon(db.session, coupon, ACTOR)
    assert audit_actions().count("coupon.archive") == 1
    [(applied, _, active)] = subscription_coupons(db.session, subscription)
    assert active and applied.removed_at is None
    other = company(seller)
    with pytest.raises(CatalogInvalid) as refused:  # archived: not added to new ones
        add_coupon(db.session, subscribe(other, [(price, 1)]), coupon, ACTOR)
    assert "coupon" in refused.value.errors
    [invoice] = generate_invoices(db.session, [tenant], "2026-10")
    assert invoice.allowance_total_minor == 4900 and invoice.amount_due_minor == 0


def test_add_coupon_refusals(seller, product):
    price = create_price(
        db.session,
        product,
        {"code": "f", "nickname": "P", "currency": "EUR", "model": "flat", "unit_amount": "1"},
        ACTOR,
    )
    subscription = subscribe(company(seller), [(price, 1)])
    usd = _coupon(seller, "USD", amount_off_minor=500, currency="USD")
    with pytest.raises(CatalogInvalid):
        add_coupon(db.session, subscription, usd, ACTOR)
    from tests.factories.tenancy import SellerFactory

    foreign = _coupon(SellerFactory(), "F", **FIXED)
    with pytest.raises(CatalogInvalid):
        add_coupon(db.session, subscription, foreign, ACTOR)
    coupon = _coupon(seller, "OK", **FIXED)
    applied = add_coupon(db.session, subscription, coupon, ACTOR)
    with pytest.raises(CatalogInvalid):
        add_coupon(db.session, subscription, coupon, ACTOR)
    remove_coupon(db.session, applied, ACTOR)
    remove_coupon(db.session, applied, ACTOR)
    assert audit_actions().count("subscription.coupon_remove") == 1
    assert count(SubscriptionCoupon) == 1


# -- hand-computed invoices -------------------------------------------------------------------

# model → (price fields, quantity, usage, lines net in cents). German consumer: 19 % VAT.
MODELS = {
    # 49.00 flat.
    "flat": ({"model": "flat", "unit_amount": "49.00"}, 1, None, 4900),
    # 3 seats × 12.00.
    "per_unit": ({"model": "per_unit", "unit_amount": "12.00"}, 3, None, 3600),
    # 15,000 calls: 1,000 free, 9,000 × 0.002 = 18.00, 5,000 × 0.001 = 5.00.
    "graduated": (
        {
            "model": "graduated",
            "usage_kind": "metered",
            "metric": "api_calls",
            "tiers": [
                {"up_to": "1000", "unit_amount": "0"},
                {"up_to": "10000", "unit_amount": "0.002"},
                {"unit_amount": "0.001"},
            ],
        },
        0,
        15000,
        2300,
    ),
    # 25 licences: all in the 11–100 tier at 4.00.
    "volume": (
        {
            "model": "volume",
            "tiers": [
                {"up_to": "10", "unit_amount": "5.00"},
                {"up_to": "100", "unit_amount": "4.00"},
                {"unit_amount": "3.00"},
            ],
        },
        25,
        None,
        10000,
    ),
    # 250 GB in packages of 100 at 10.00: 3 packages.
    "package": (
        {
            "model": "package",
            "unit_amount": "10.00",
            "package_size": "100",
            "usage_kind": "metered",
            "metric": "api_calls",
        },
        0,
        250,
        3000,
    ),
}

# (model, coupon) → (allowance, tax exclusive, VAT, amount due), in cents, worked by hand:
# 20 % of the lines net half-up; 10.00 off; VAT 19 % of what is left, half-up.
EXPECTED = {
    ("flat", "percent"): (980, 3920, 745, 4665),  # 39.20 × 19 % = 7.448
    ("flat", "fixed"): (1000, 3900, 741, 4641),  # 39.00 × 19 % = 7.41
    ("per_unit", "percent"): (720, 2880, 547, 3427),  # 28.80 × 19 % = 5.472
    ("per_unit", "fixed"): (1000, 2600, 494, 3094),
    ("graduated", "percent"): (460, 1840, 350, 2190),  # 18.40 × 19 % = 3.496
    ("graduated", "fixed"): (1000, 1300, 247, 1547),
    ("volume", "percent"): (2000, 8000, 1520, 9520),
    ("volume", "fixed"): (1000, 9000, 1710, 10710),
    ("package", "percent"): (600, 2400, 456, 2856),
    ("package", "fixed"): (1000, 2000, 380, 2380),
}


def _invoice_with_coupon(seller, product, model: str, kind: str, *, run=False, **profile):
    fields, quantity, usage, _ = MODELS[model]
    price = create_price(
        db.session,
        product,
        {"code": model, "nickname": model.title(), "currency": "EUR", **fields},
        ACTOR,
    )
    tenant = company(seller, **profile)
    subscription = subscribe(tenant, [(price, quantity)])
    if usage:
        use(tenant, "api_calls", usage, f"{model}-{kind}")
    coupon = _coupon(seller, f"{model}-{kind}", **(PERCENT if kind == "percent" else FIXED))
    applied = add_coupon(db.session, subscription, coupon, ACTOR)
    if run:
        db.session.commit()
        run_invoices(db.session, "2026-10", issue_date=ISSUE)
        invoice = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).one()
    else:
        [invoice] = generate_invoices(db.session, [tenant], "2026-10")
        finalize_invoice(db.session, invoice, issue_date=ISSUE)
    db.session.commit()
    return invoice, coupon, applied


def _kinds(pairs):
    return [
        pytest.param(*pair)
        for pair in pairs
    ]


@pytest.mark.parametrize(("model", "kind"), _kinds(EXPECTED))
def test_coupon_on_every_price_model_to_the_cent(seller, product, model, kind):
    invoice, coupon, applied = _invoice_with_coupon(seller, product, model, kind)
    allowance, net, vat, due = EXPECTED[(model, kind)]
    assert invoice.lines_total_minor == MODELS[model][3]
    assert (
        invoice.allowance_total_minor,
        invoice.tax_exclusive_minor,
        invoice.tax_minor,
        invoice.amount_due_minor,
    ) == (allowance, net, vat, due)
    # An allowance, never a negative line.
    lines = db.session.scalars(sa.select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
    assert all(line.net_amount_minor >= 0 for line in lines)
    [ac] = invoice.allowance_charges
    assert (ac.is_charge, ac.amount_minor, ac.reason, ac.reason_code) == (
        False,
        allowance,
        f"Coupon {coupon.code} ({coupon.code})",
        "95",
    )
    assert (ac.vat_category, ac.vat_rate) == (VatCategory.STANDARD, D(19))
    assert ac.percent == (D(20) if kind == "percent" else None)
    db.session.refresh(applied)
    assert applied.periods_used == 1


@pytest.mark.parametrize("kind", _kinds([("percent",), ("fixed",)]))
def test_the_invoice_run_applies_coupons_and_counts_them_once(seller, product, kind):
    invoice, _, applied = _invoice_with_coupon(seller, product, "graduated", kind, run=True)
    assert invoice.amount_due_minor == EXPECTED[("graduated", kind)][3]
    db.session.refresh(applied)
    assert applied.periods_used == 1
    run_invoices(db.session, "2026-10", issue_date=ISSUE)  # a rerun issues nothing new
    db.session.commit()
    db.session.refresh(applied)
    assert applied.periods_used == 1


@pytest.mark.parametrize(("kind", "amount"), [("fixed", "10.00"), ("percent", "7.20")])
def test_every_format_shows_the_coupon_as_an_allowance(seller, product, kind, amount):
    invoice, coupon, _ = _invoice_with_coupon(
        seller, product, "per_unit", kind, vat_id="DE136695976"
    )
    reason = f"Coupon {coupon.code} ({coupon.code})"
    ubl = etree.fromstring(render_document(db.session, invoice, "ubl").content)
    ns = {
        "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
        "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    }
    [element] = ubl.xpath("/*/cac:AllowanceCharge", namespaces=ns)
    assert element.xpath("string(cbc:ChargeIndicator)", namespaces=ns) == "false"
    assert element.xpath("string(cbc:AllowanceChargeReason)", namespaces=ns) == reason
    assert element.xpath("string(cbc:Amount)", namespaces=ns) == amount
    assert (
        ubl.xpath("string(//cac:LegalMonetaryTotal/cbc:AllowanceTotalAmount)", namespaces=ns)
        == amount
    )
    cii = etree.fromstring(render_document(db.session, invoice, "cii").content)
    ram = {
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    }
    [allowance] = cii.xpath("//ram:SpecifiedTradeAllowanceCharge", namespaces=ram)
    assert allowance.xpath("string(ram:ChargeIndicator)", namespaces=ram).strip() == "false"
    assert allowance.xpath("string(ram:Reason)", namespaces=ram) == reason
    facturx = render_document(db.session, invoice, "facturx").content
    assert facturx.startswith(b"%PDF")
    rows = document_rows(invoice)
    cents = int(amount.replace(".", ""))
    assert [(a.reason, a.amount_minor) for a in rows.allowance_charges] == [(reason, cents)]
    assert render_document(db.session, invoice, "pdf").content.startswith(b"%PDF")


def test_the_estimate_shows_the_coupon_too(seller, product):
    fields, quantity, _, _ = MODELS["flat"]
    price = create_price(
        db.session, product, {"code": "f", "nickname": "P", "currency": "EUR", **fields}, ACTOR
    )
    tenant = company(seller)
    today = dt.date.today().replace(day=1)
    subscription = subscribe(tenant, [(price, quantity)])
    subscription.started_on = subscription.current_period_start = today
    subscription.current_period_end = (today + dt.timedelta(days=32)).replace(day=1)
    add_coupon(db.session, subscription, _coupon(seller, "E", **FIXED), ACTOR)
    found = estimate(db.session, tenant, dt.datetime.now(dt.UTC))
    assert found.projected_totals.allowance_total.minor == 1000


# -- the arithmetic -----------------------------------------------------------------------------


def _coupon_plan(percent=None, amount=None, currency="EUR", sid=1) -> PlannedCoupon:
    return PlannedCoupon(
        sid, f"C{sid}", "Coupon", percent, amount, currency, dt.datetime.now(dt.UTC)
    )


TWO_RATES = [
    DraftLine("Service", D(1), D("100.00"), vat_rate=D(19)),
    DraftLine("Book", D(1), D("50.00"), vat_rate=D(7)),
]


def test_a_fixed_coupon_is_split_across_vat_rates_pro_rata():
    rows = coupon_allowance_rows(TWO_RATES, D(0), [_coupon_plan(amount=1000)], "EUR")
    # 10.00 × 100/150 = 6.666… and × 50/150 = 3.333…: the spare cent goes to the larger remainder.
    assert [(r["vat_rate"], r["amount_minor"]) for r in rows] == [(D(19), 667), (D(7), 333)]


def test_coupons_never_take_an_invoice_below_zero():
    rows = coupon_allowance_rows(
        TWO_RATES,
        D(50),
        [_coupon_plan(percent=D(60), sid=1), _coupon_plan(amount=10**9, sid=2)],
        "EUR",
    )
    # The company discount takes 50 %; the 60 % coupon 60 % of the rest; the fixed one the rest.
    assert [(r["reason"], r["vat_rate"], r["amount_minor"]) for r in rows] == [
        ("Coupon (C1)", D(19), 3000),
        ("Coupon (C1)", D(7), 1500),
        ("Coupon (C2)", D(19), 2000),
        ("Coupon (C2)", D(7), 1000),
    ]
    assert coupon_allowance_rows(TWO_RATES, D(100), [_coupon_plan(amount=1)], "EUR") == []


def test_a_credit_line_leaves_its_group_alone():
    lines = [DraftLine("Credit", D(-1), D("10.00"), vat_rate=D(19))]
    assert coupon_allowance_rows(lines, D(0), [_coupon_plan(percent=D(10))], "EUR") == []


# -- durations and the count ------------------------------------------------------------------


def _monthly_invoices(seller, product, coupon_fields, months):
    price = create_price(
        db.session,
        product,
        {"code": "f", "nickname": "P", "currency": "EUR", "model": "flat", "unit_amount": "10"},
        ACTOR,
    )
    tenant = company(seller)
    subscription = subscribe(tenant, [(price, 1)])
    applied = add_coupon(db.session, subscription, _coupon(seller, "D", **coupon_fields), ACTOR)
    db.session.commit()
    discounts = []
    for month in months:
        run_invoices(db.session, month, issue_date=ISSUE)
        db.session.commit()
        invoice = db.session.scalars(
            sa.select(Invoice).where(Invoice.tenant_id == tenant.id).order_by(Invoice.id.desc())
        ).first()
        discounts.append(invoice.allowance_total_minor)
    db.session.refresh(applied)
    return discounts, applied


def test_once_repeating_and_forever(seller, product):
    months = ["2026-10", "2026-11", "2026-12", "2027-01"]
    once, applied = _monthly_invoices(
        seller, product, {"amount_off_minor": 100, "currency": "EUR"}, months
    )
    assert once == [100, 0, 0, 0] and applied.periods_used == 1


def test_repeating_coupon_discounts_n_invoices(seller, product):
    months = ["2026-10", "2026-11", "2026-12"]
    discounts, applied = _monthly_invoices(
        seller,
        product,
        {
            "amount_off_minor": 100,
            "currency": "EUR",
            "duration": "repeating",
            "duration_periods": 2,
        },
        months,
    )
    assert discounts == [100, 100, 0] and applied.periods_used == 2


def test_forever_coupon_and_removal(seller, product):
    discounts, applied = _monthly_invoices(
        seller,
        product,
        {"amount_off_minor": 100, "currency": "EUR", "duration": "forever"},
        ["2026-10", "2026-11"],
    )
    assert discounts == [100, 100] and applied.periods_used == 2
    remove_coupon(db.session, applied, ACTOR)
    db.session.commit()
    run_invoices(db.session, "2026-12", issue_date=ISSUE)
    db.session.commit()
    last = db.session.scalars(sa.select(Invoice).order_by(Invoice.id.desc())).first()
    assert last.allowance_total_minor == 0
    # Recounting is idempotent: the same invoices give the same count.
    coupon = db.session.get(Coupon, applied.coupon_id)
    assert count_coupon_uses(db.session, applied, coupon) == 2


@pytest.mark.skipif(not ON_POSTGRES, reason="concurrent writers need PostgreSQL")
def test_concurrent_finalizations_both_count(app, seller, product):
    """Two drafts carrying one forever coupon, finalized by two transactions at once."""
    price = create_price(
        db.session,
        product,
        {"code": "f", "nickname": "P", "currency": "EUR", "model": "flat", "unit_amount": "10"},
        ACTOR,
    )
    tenant = company(seller)
    subscription = subscribe(tenant, [(price, 1)])
    applied = add_coupon(
        db.session, subscription, _coupon(seller, "R", percent_off="10", duration="forever"), ACTOR
    )
    [october] = generate_invoices(db.session, [tenant], "2026-10")
    [november] = generate_invoices(db.session, [tenant], "2026-11")
    db.session.commit()
    ids = [october.id, november.id]
    barrier = threading.Barrier(2)
    errors = []

    def finalize(invoice_id):
        with app.app_context():
            session = Session(db.engine)
            try:
                invoice = session.get(Invoice, invoice_id)
                barrier.wait()
                finalize_invoice(session, invoice, issue_date=ISSUE)
                session.commit()
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                session.close()

    threads = [threading.Thread(target=finalize, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db.session.refresh(applied)
    assert applied.periods_used == 2
