"""Volume and package prices, and a coupon, set up through the admin API and billed by
`flask invoice-run`, against totals computed by hand.

tests/setup/test_subscriptions_billed.py covers flat, per unit, graduated and proration;
these are the other two models. The hand computation follows the documented rules: each
line's net is quantity × unit price rounded half-up to the cent (BT-131, domain/totals.py),
VAT is the rate of the sum of the nets, half-up to the cent (BT-117), a volume price bills
every unit at the tier the quantity reaches (plus that tier's flat fee), a package price
bills whole packages, rounded up (domain/pricing.py), and a percentage coupon takes its
share of the net, half-up to the cent, before VAT (invoices/generation.py).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.tenancy.models import Tenant
from tests.api_console.conftest import admin_token

D = Decimal
START = dt.date.today().replace(day=1)
ORGS = "/api/v1/organizations"


def _cents(value: Decimal) -> int:
    """Major units to minor, half-up: the rounding rule of BT-131 and BT-117."""
    return int((value * 100).quantize(D(1), rounding=ROUND_HALF_UP))


class Admin:
    """Requests to the admin (console) API with an admin token."""

    def __init__(self, client):
        self.client, self.token = client, admin_token()

    def created(self, path: str, body: dict) -> dict:
        answer = self.client.post(
            ORGS + path, json=body, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()["data"]

    def usage(self, company: dict, metric: str, quantities: list[str]) -> None:
        events = [
            {
                "idempotencyKey": f"{metric}-{n}",
                "metric": metric,
                "quantity": quantity,
                "timestamp": f"{START:%Y-%m-%d}T0{n}:15:00Z",
            }
            for n, quantity in enumerate(quantities)
        ]
        answer = self.client.post(
            f"{ORGS}/companies/{company['companyUid']}/billing/usage",
            json={"events": events},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["data"]["created"] == len(events)


@pytest.fixture
def admin(client, app) -> Admin:
    return Admin(client)


@pytest.fixture
def product(admin) -> dict:
    seller = admin.created(
        "/sellers",
        {
            "legalName": "Operator Cloud GmbH",
            "addressLine1": "Torstraße 1",
            "postalCode": "10119",
            "city": "Berlin",
            "country": "DE",
            "vatId": "DE811907980",
            "email": "billing@operator.example",
            "iban": "DE89370400440532013000",
        },
    )
    made = admin.created(
        "/billing/products",
        {"sellerUid": seller["sellerUid"], "code": "cloud", "name": "Cloud workspace"},
    )
    return {**made, "sellerUid": seller["sellerUid"]}


def _price(admin: Admin, product: dict, code: str, **fields) -> dict:
    body = {"productUid": product["productUid"], "code": code, "currency": "EUR", **fields}
    return admin.created("/billing/prices", body)


def _company(admin: Admin, product: dict, name: str = "Nordlicht Software") -> dict:
    """A German business buyer without a VAT ID: 19 % German VAT."""
    return admin.created(
        "/companies",
        {
            "name": name,
            "sellerUid": product["sellerUid"],
            "billingProfile": {
                "companyName": f"{name} GmbH",
                "addressLine1": "Hafenstraße 3",
                "postalCode": "20457",
                "city": "Hamburg",
                "country": "DE",
                "billingEmail": "ap@nordlicht.example",
            },
        },
    )


def _subscribe(admin: Admin, company: dict, items: list[dict]) -> dict:
    return admin.created(
        f"/companies/{company['companyUid']}/billing/subscriptions",
        {"items": items, "startDate": START.isoformat()},
    )


def _billed(runner, company: dict) -> Invoice:
    result = runner.invoke(args=["invoice-run", "--period", f"{START:%Y-%m}"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    tenant = db.session.scalars(sa.select(Tenant).where(Tenant.slug == company["slug"])).one()
    return db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).one()


def _lines(invoice: Invoice) -> list[tuple[str, Decimal, Decimal, int]]:
    return [
        (line.description, line.quantity, line.unit_price, line.net_amount_minor)
        for line in sorted(invoice.lines, key=lambda line: line.position)
    ]


# -- volume -------------------------------------------------------------------------------------


def test_volume_prices_bill_every_unit_at_the_tier_reached(admin, product, runner):
    seats = _price(
        admin,
        product,
        "seats",
        nickname="Seats",
        model="volume",
        tiers=[
            {"upTo": "10", "unitAmount": "15.00"},
            {"upTo": None, "unitAmount": "12.50"},
        ],
    )
    storage = _price(
        admin,
        product,
        "storage",
        nickname="Storage",
        model="volume",
        usageKind="metered",
        metric="storage_gb",
        tiers=[
            {"upTo": "1000", "unitAmount": "0.05"},
            {"upTo": "10000", "unitAmount": "0.0275", "flatAmount": "5.00"},
            {"upTo": None, "unitAmount": "0.02"},
        ],
    )
    company = _company(admin, product)
    _subscribe(
        admin,
        company,
        [{"priceUid": seats["priceUid"], "quantity": "12"}, {"priceUid": storage["priceUid"]}],
    )
    admin.usage(company, "storage_gb", ["2000", "2321"])
    invoice = _billed(runner, company)
    # By hand. Seats: 12 is past the first tier's 10, so all 12 at 12.50 = 150.00 (not
    # 10 × 15.00 + 2 × 12.50 = 175.00, which graduated tiers would give).
    # Storage: 2,000 + 2,321 = 4,321 GB falls in the second tier (1,001–10,000): all 4,321
    # at 0.0275 = 118.8275 → 118.83 (half-up), and that tier's flat fee 5.00.
    # Net 150.00 + 118.83 + 5.00 = 273.83; VAT 19 % = 52.0277 → 52.03; total 325.86.
    assert _lines(invoice) == [
        ("Seats (11 and above)", D(12), D("12.50"), 15000),
        ("Storage (1,001–10,000)", D(4321), D("0.0275"), 11883),
        ("Storage (1,001–10,000), flat fee", D(1), D("5.00"), 500),
    ]
    assert invoice.tax_exclusive_minor == 27383
    assert invoice.tax_minor == _cents(D("273.83") * D("0.19")) == 5203
    assert invoice.amount_due_minor == 32586


def test_a_volume_quantity_on_a_tier_bound_stays_in_that_tier(admin, product, runner):
    storage = _price(
        admin,
        product,
        "storage",
        nickname="Storage",
        model="volume",
        usageKind="metered",
        metric="storage_gb",
        tiers=[
            {"upTo": "1000", "unitAmount": "0.05"},
            {"upTo": None, "unitAmount": "0.03"},
        ],
    )
    company = _company(admin, product)
    _subscribe(admin, company, [{"priceUid": storage["priceUid"]}])
    admin.usage(company, "storage_gb", ["600", "400"])
    invoice = _billed(runner, company)
    # By hand: 600 + 400 = 1,000 GB, exactly the first tier's bound (inclusive): all 1,000
    # at 0.05 = 50.00, not at 0.03. VAT 19 % of 50.00 = 9.50; total 59.50.
    assert _lines(invoice) == [("Storage (1–1,000)", D(1000), D("0.05"), 5000)]
    assert (invoice.tax_exclusive_minor, invoice.tax_minor) == (5000, 950)
    assert invoice.amount_due_minor == 5950


# -- package ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantities", "used", "packages"),
    [
        # 250.5 + 100 = 350.5 GB: 3.505 packages of 100, rounded up to 4.
        (["250.5", "100"], "350.5", 4),
        # 300 + 100 = 400 GB: exactly 4 packages, not 5.
        (["300", "100"], "400", 4),
        # 400.000001 GB: a millionth over 4 packages is a fifth.
        (["400", "0.000001"], "400.000001", 5),
    ],
)
def test_package_prices_bill_whole_packages_rounded_up(
    admin, product, runner, quantities, used, packages
):
    packs = _price(
        admin,
        product,
        "seat-packs",
        nickname="Seat packs",
        model="package",
        unitAmount="20.00",
        packageSize="5",
    )
    storage = _price(
        admin,
        product,
        "storage",
        nickname="Storage",
        model="package",
        usageKind="metered",
        metric="storage_gb",
        unitAmount="4.90",
        packageSize="100",
    )
    company = _company(admin, product)
    _subscribe(
        admin,
        company,
        [{"priceUid": packs["priceUid"], "quantity": "12"}, {"priceUid": storage["priceUid"]}],
    )
    admin.usage(company, "storage_gb", quantities)
    invoice = _billed(runner, company)
    # By hand: 12 seats in packs of 5 = 2.4 → 3 packs × 20.00 = 60.00; storage: `packages`
    # packages of 100 GB × 4.90 (4 → 19.60, 5 → 24.50). Net 60.00 + storage; VAT 19 %.
    storage_net = {4: D("19.60"), 5: D("24.50")}[packages]
    net = D("60.00") + storage_net  # 79.60 or 84.50
    vat = {4: D("15.124"), 5: D("16.055")}[packages]  # 19 % of the net, unrounded
    assert net * D("0.19") == vat
    assert _lines(invoice) == [
        ("Seat packs (12 units in packages of 5)", D(3), D("20.00"), 6000),
        (
            f"Storage ({used} units in packages of 100)",
            D(packages),
            D("4.90"),
            _cents(storage_net),
        ),
    ]
    # 15.124 → 15.12 and 16.055 → 16.06 (half-up): totals 94.72 and 100.56.
    expected = {4: (7960, 1512, 9472), 5: (8450, 1606, 10056)}[packages]
    assert (invoice.tax_exclusive_minor, invoice.tax_minor, invoice.amount_due_minor) == expected


# -- coupon -------------------------------------------------------------------------------------


def test_a_percentage_coupon_discounts_the_net_before_vat(admin, product, runner):
    storage = _price(
        admin,
        product,
        "storage",
        nickname="Storage",
        model="package",
        usageKind="metered",
        metric="storage_gb",
        unitAmount="4.90",
        packageSize="100",
    )
    seats = _price(
        admin,
        product,
        "seats",
        nickname="Seats",
        model="volume",
        tiers=[{"upTo": "10", "unitAmount": "15.00"}, {"upTo": None, "unitAmount": "12.50"}],
    )
    admin.created(
        "/billing/coupons",
        {
            "sellerUid": product["sellerUid"],
            "code": "WELCOME15",
            "name": "Welcome",
            "percentOff": "15",
        },
    )
    company = _company(admin, product)
    subscription = _subscribe(
        admin,
        company,
        [{"priceUid": seats["priceUid"], "quantity": "7"}, {"priceUid": storage["priceUid"]}],
    )
    admin.created(
        f"/companies/{company['companyUid']}/billing/subscriptions/"
        f"{subscription['instanceUid']}/coupons",
        {"code": "WELCOME15"},
    )
    admin.usage(company, "storage_gb", ["333"])
    invoice = _billed(runner, company)
    # By hand: 7 seats in the first tier: 7 × 15.00 = 105.00; 333 GB = 3.33 → 4 packages ×
    # 4.90 = 19.60; lines 124.60. Coupon 15 % of 124.60 = 18.69 (exact); net 124.60 − 18.69
    # = 105.91; VAT 19 % of 105.91 = 20.1229 → 20.12; total 105.91 + 20.12 = 126.03.
    assert [net for *_, net in _lines(invoice)] == [10500, 1960]
    assert invoice.allowance_total_minor == 1869
    assert invoice.tax_exclusive_minor == 10591
    assert invoice.tax_minor == 2012
    assert invoice.amount_due_minor == 12603
