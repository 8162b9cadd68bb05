"""Hand-computed billing scenarios: every figure below was worked out on paper first."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.models import PriceModel
from portal.catalog.services import SubscriptionChangeRefused, change_subscription_item
from portal.extensions import db
from portal.invoices.drafts import DraftLine, create_draft
from portal.invoices.generation import generate_invoices, month_period
from portal.invoices.issuing import finalize_invoice
from portal.invoices.lifecycle import mark_paid
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, VatCategory
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ledger.services import balance
from tests.scenarios.conftest import D, record_usage, subscribe

API_TIERS = ((D(10000), D(0)), (D(100000), D("0.002")), (None, D("0.001")))


def _generate(tenant) -> Invoice:
    [invoice] = generate_invoices(db.session, [tenant], "2026-10")
    db.session.flush()
    return invoice


def _lines(invoice) -> list[tuple[str, int]]:
    return [(line.description, line.net_amount_minor) for line in invoice.lines]


def _breakdown(invoice) -> list[tuple]:
    return [
        (b.category, b.rate, b.taxable_minor, b.tax_minor, b.exemption_code)
        for b in invoice.vat_breakdown
    ]


def test_domestic_flat_seats_and_graduated_usage(catalog, make_tenant):
    tenant = make_tenant("DE", "DE136695976")
    subscribe(
        tenant,
        [
            (catalog.price("Platform", PriceModel.FLAT, unit_amount=D("49.00")), 1),
            (catalog.price("Seats", PriceModel.PER_UNIT, unit_amount=D("12.00")), 8),
            (catalog.price("API calls", PriceModel.GRADUATED, tiers=API_TIERS, metric="api"), 0),
        ],
    )
    record_usage(tenant, "api", 200000, dt.date(2026, 10, 3), "a")
    record_usage(tenant, "api", 50000, dt.date(2026, 10, 31), "b")
    record_usage(tenant, "api", 999999, dt.date(2026, 11, 1), "next-month")  # not October
    invoice = _generate(tenant)
    # 49.00 + 8 × 12.00 = 145.00; API: 10,000 free, 90,000 × 0.002 = 180.00,
    # 150,000 × 0.001 = 150.00 → net 475.00; VAT 19 % = 90.25; total 565.25
    assert [net for _, net in _lines(invoice)] == [4900, 9600, 0, 18000, 15000]
    assert invoice.lines_total_minor == 47500
    assert _breakdown(invoice) == [("S", D(19), 47500, 9025, None)]
    assert invoice.amount_due_minor == 56525
    assert (invoice.period_start, invoice.period_end) == (
        dt.date(2026, 10, 1),
        dt.date(2026, 10, 31),
    )


def test_company_discount_is_an_allowance_per_vat_group(catalog, make_tenant):
    tenant = make_tenant("DE", discount="10")
    subscribe(tenant, [(catalog.price("Platform", PriceModel.FLAT, unit_amount=D("475.00")), 1)])
    invoice = _generate(tenant)
    # 475.00 − 10 % (47.50) = 427.50; VAT 19 % = 81.225 → 81.23; total 508.73
    assert invoice.allowance_total_minor == 4750
    assert invoice.tax_exclusive_minor == 42750
    assert invoice.tax_minor == 8123
    assert invoice.amount_due_minor == 50873


def test_two_vat_rates_on_one_invoice(make_tenant):
    tenant = make_tenant("DE")
    invoice = create_draft(
        db.session,
        tenant,
        kind=InvoiceKind.MANUAL,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
        lines=[
            DraftLine("Consulting", D(3), D("19.99"), vat_rate=D(19)),
            DraftLine("E-book", D("2.5"), D("4.15"), vat_rate=D(7)),
            DraftLine("Support", D(1), D("100"), vat_rate=D(19)),
        ],
    )
    # nets 59.97, 10.375 → 10.38, 100.00; 19 %: 159.97 → 30.3943 → 30.39; 7 %: 0.7266 → 0.73
    assert _breakdown(invoice) == [("S", D(19), 15997, 3039, None), ("S", D(7), 1038, 73, None)]
    assert invoice.amount_due_minor == 17035 + 3112


def test_eu_reverse_charge(catalog, make_tenant):
    tenant = make_tenant("FR", "FR40303265045")
    subscribe(
        tenant,
        [
            (catalog.price("Platform", PriceModel.FLAT, unit_amount=D("49.00")), 1),
            (catalog.price("Seats", PriceModel.PER_UNIT, unit_amount=D("12.00")), 3),
        ],
    )
    invoice = _generate(tenant)
    # 49.00 + 36.00 = 85.00 at AE 0 %: the buyer accounts for the VAT
    assert _breakdown(invoice) == [("AE", D(0), 8500, 0, "VATEX-EU-AE")]
    assert invoice.vat_breakdown[0].exemption_reason == "Reverse charge"
    assert invoice.amount_due_minor == 8500


def test_b2c_oss_charges_the_buyer_countrys_rate(catalog, make_tenant):
    tenant = make_tenant("AT")  # a consumer: no VAT ID
    subscribe(tenant, [(catalog.price("Platform", PriceModel.FLAT, unit_amount=D("85.00")), 1)])
    invoice = _generate(tenant)
    assert _breakdown(invoice) == [("S", D(20), 8500, 1700, None)]  # Austrian 20 %
    assert invoice.amount_due_minor == 10200


def test_jpy_invoice_outside_the_eu(catalog, make_tenant):
    tenant = make_tenant("JP", currency="JPY")
    jpy_tiers = ((D(10000), D(0)), (D(100000), D("0.3")), (None, D("0.15")))
    subscribe(
        tenant,
        [
            (catalog.price("Platform", PriceModel.FLAT, "JPY", unit_amount=D(7000)), 1),
            (catalog.price("Seats", PriceModel.PER_UNIT, "JPY", unit_amount=D(1500)), 12),
            (catalog.price("API", PriceModel.GRADUATED, "JPY", tiers=jpy_tiers, metric="api"), 0),
        ],
        currency="JPY",
    )
    record_usage(tenant, "api", 140000, dt.date(2026, 10, 10), "a")
    invoice = _generate(tenant)
    # ¥7,000 + 12 × ¥1,500 + 90,000 × 0.3 + 40,000 × 0.15 = 7,000 + 18,000 + 27,000 + 6,000
    assert invoice.currency == "JPY"
    assert invoice.amount_due_minor == 58000
    assert _breakdown(invoice) == [("O", D(0), 58000, 0, "VATEX-EU-O")]


def test_volume_and_package_prices(catalog, make_tenant):
    tenant = make_tenant("DE")
    volume = ((D(100), D("0.10")), (D(1000), D("0.08")), (None, D("0.05")))
    subscribe(
        tenant,
        [
            (catalog.price("Storage", PriceModel.VOLUME, tiers=volume, metric="gb"), 0),
            (
                catalog.price(
                    "Backup",
                    PriceModel.PACKAGE,
                    unit_amount=D(5),
                    package_size=D(100),
                    metric="backup_gb",
                ),
                0,
            ),
        ],
    )
    record_usage(tenant, "gb", 500, dt.date(2026, 10, 5), "a")
    record_usage(tenant, "backup_gb", 250, dt.date(2026, 10, 5), "b")
    invoice = _generate(tenant)
    # volume: all 500 GB at the 101–1,000 tier's 0.08 = 40.00; packages: ⌈250/100⌉ × 5 = 15.00
    assert [net for _, net in _lines(invoice)] == [4000, 1500]
    assert invoice.lines[1].quantity == 3


def test_proration_on_upgrade_mid_month(catalog, make_tenant):
    tenant = make_tenant("DE")
    seats = catalog.price("Seats", PriceModel.PER_UNIT, unit_amount=D("12.00"))
    subscription = subscribe(
        tenant,
        [(catalog.price("Platform", PriceModel.FLAT, unit_amount=D("49.00")), 1), (seats, 5)],
    )
    change_subscription_item(
        db.session, subscription.items[1], on=dt.date(2026, 10, 16), quantity=D(8)
    )
    invoice = _generate(tenant)
    # Full month at today's 8 seats: 96.00. The 15 days before Oct 16 (15/31) were on 5 seats:
    # unit price 12 × 15/31 = 5.8064516129; + 5 × that = 29.03; − 8 × that = −46.45.
    # Net: 49.00 + 96.00 + 29.03 − 46.45 = 127.58; VAT 19 % = 24.2402 → 24.24; total 151.82
    assert [net for _, net in _lines(invoice)] == [4900, 9600, 2903, -4645]
    assert invoice.lines[2].unit_price == D("5.8064516129")
    assert invoice.amount_due_minor == 15182


def test_changes_are_refused_for_metered_prices_and_other_currencies(catalog, make_tenant):
    tenant = make_tenant("DE")
    metered = catalog.price("API", PriceModel.GRADUATED, tiers=API_TIERS, metric="api")
    yen = catalog.price("Yen seats", PriceModel.PER_UNIT, "JPY", unit_amount=D(1500))
    subscription = subscribe(
        tenant, [(metered, 0), (catalog.price("S", PriceModel.PER_UNIT, unit_amount=D(1)), 1)]
    )
    with pytest.raises(SubscriptionChangeRefused):
        change_subscription_item(
            db.session, subscription.items[0], on=dt.date(2026, 10, 5), quantity=D(1)
        )
    with pytest.raises(SubscriptionChangeRefused):
        change_subscription_item(
            db.session, subscription.items[1], on=dt.date(2026, 10, 5), price=yen
        )
    with pytest.raises(SubscriptionChangeRefused):
        change_subscription_item(
            db.session, subscription.items[1], on=dt.date(2026, 11, 5), quantity=D(2)
        )


def test_trial_ending_mid_month_charges_the_rest(catalog, make_tenant):
    tenant = make_tenant("DE")
    subscribe(
        tenant,
        [(catalog.price("Platform", PriceModel.FLAT, unit_amount=D("31.00")), 1)],
        trial_end=dt.date(2026, 10, 11),
    )
    invoice = _generate(tenant)
    # Trial until Oct 10: 21 of 31 days are charged: 31.00 × 21/31 = 21.00
    assert [net for _, net in _lines(invoice)] == [2100]


def test_a_trial_covering_the_month_bills_nothing(catalog, make_tenant):
    tenant = make_tenant("DE")
    subscribe(
        tenant,
        [(catalog.price("Platform", PriceModel.FLAT, unit_amount=D("31.00")), 1)],
        trial_end=dt.date(2026, 11, 15),
    )
    assert generate_invoices(db.session, [tenant], "2026-10") == []


def test_generation_is_idempotent(catalog, make_tenant):
    tenant = make_tenant("DE")
    subscribe(tenant, [(catalog.price("Platform", PriceModel.FLAT, unit_amount=D("49.00")), 1)])
    first = _generate(tenant)
    db.session.commit()
    again = generate_invoices(db.session, [tenant], "2026-10")
    assert [i.id for i in again] == [first.id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 1


def test_paid_invoice_ledger(catalog, make_tenant):
    tenant = make_tenant("DE")
    subscribe(tenant, [(catalog.price("Platform", PriceModel.FLAT, unit_amount=D("100.00")), 1)])
    invoice = _generate(tenant)
    finalize_invoice(db.session, invoice, issue_date=dt.date(2026, 11, 1))
    assert balance(db.session, tenant).minor == 11900
    mark_paid(db.session, invoice, at=dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    movements = db.session.execute(
        sa.select(LedgerMovement.kind, LedgerMovement.amount_minor).order_by(LedgerMovement.id)
    ).all()
    assert movements == [(MovementKind.INVOICE, 11900), (MovementKind.PAYMENT, -11900)]
    assert balance(db.session, tenant).minor == 0


def test_month_period_parsing():
    assert month_period("2026-12") == (dt.date(2026, 12, 1), dt.date(2027, 1, 1))
    with pytest.raises(ValueError, match="2026-10"):
        month_period("October")


def test_vat_category_enum_is_shared():
    assert VatCategory.REVERSE_CHARGE == "AE"
