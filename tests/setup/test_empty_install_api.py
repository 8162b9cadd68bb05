"""From an empty database to a correct invoice through the admin API alone.

`flask --app wsgi create-admin` and `create-token --admin` are all that happens outside the
API: then a seller, a product with a seat price and a graduated metered price, a company
with a subscription, its usage, and the month's invoice generation are all requests to the
admin API, and the invoice it issues is checked against a total computed by hand.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from portal.extensions import db
from portal.tenancy.models import Seller, Tenant, User

TODAY = dt.date.today()
MONTH = TODAY.replace(day=1)
ORGS = "/api/v1/organizations"


class Admin:
    """Requests with the operator's admin token."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def __call__(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}"}
        response = self.client.open(ORGS + path, method=method, headers=headers, **kwargs)
        return response

    def created(self, path: str, body: dict) -> dict:
        response = self("POST", path, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]


def test_an_operator_bills_a_company_from_an_empty_install_through_the_api(client, runner):
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Seller)) == 0
    made = runner.invoke(
        args=["create-admin", "--email", "ops@operator.example", "--name", "Ops"],
        input="Correct-horse-battery-9\nCorrect-horse-battery-9\n",
    )
    assert made.exit_code == 0, made.output
    token = runner.invoke(args=["create-token", "--admin", "--name", "setup"])
    assert token.exit_code == 0, token.output
    api = Admin(client, token.output.splitlines()[1].strip())

    seller = api.created(
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
            "bic": "COBADEFFXXX",
        },
    )
    product = api.created(
        "/billing/products",
        {"sellerUid": seller["sellerUid"], "code": "cloud", "name": "Cloud workspace"},
    )
    seats = api.created(
        "/billing/prices",
        {
            "productUid": product["productUid"],
            "code": "seat",
            "nickname": "Seats",
            "currency": "EUR",
            "model": "per_unit",
            "unitAmount": "12.00",
        },
    )
    calls = api.created(
        "/billing/prices",
        {
            "productUid": product["productUid"],
            "code": "api-calls",
            "nickname": "API calls",
            "currency": "EUR",
            "model": "graduated",
            "usageKind": "metered",
            "metric": "api_calls",
            "tiers": [
                {"upTo": "1000", "unitAmount": "0"},
                {"upTo": "10000", "unitAmount": "0.002"},
                {"upTo": None, "unitAmount": "0.001"},
            ],
        },
    )
    company = api.created(
        "/companies",
        {
            "name": "Nordlicht Software",
            "sellerUid": seller["sellerUid"],
            "language": "de",
            "billingProfile": {
                "companyName": "Nordlicht Software GmbH",
                "addressLine1": "Hafenstraße 3",
                "postalCode": "20457",
                "city": "Hamburg",
                "country": "DE",
                "billingEmail": "ap@nordlicht.example",
            },
        },
    )
    uid = company["companyUid"]
    api.created(
        f"/companies/{uid}/billing/subscriptions",
        {
            "items": [
                {"priceUid": seats["priceUid"], "quantity": "4"},
                {"priceUid": calls["priceUid"]},
            ],
            "startDate": MONTH.isoformat(),
        },
    )
    events = [
        {
            "idempotencyKey": f"calls-{n}",
            "metric": "api_calls",
            "quantity": "3000",
            "timestamp": f"{MONTH:%Y-%m-%d}T0{n}:00:00Z",
        }
        for n in range(4)
    ]
    usage = api("POST", f"/companies/{uid}/billing/usage", json={"events": events})
    assert usage.status_code in (200, 201), usage.get_json()
    assert usage.get_json()["data"]["created"] == 4

    job = api("POST", f"/companies/{uid}/billing/generateInvoices?period={MONTH:%Y-%m}")
    assert job.status_code in (200, 202), job.get_json()
    window = {"fromDate": MONTH.isoformat(), "toDate": (MONTH + dt.timedelta(days=62)).isoformat()}
    listed = api("GET", f"/companies/{uid}/billing/invoices", query_string=window)
    assert listed.status_code == 200, listed.get_json()
    [invoice] = listed.get_json()["data"]
    # By hand: 4 seats × 12.00 = 48.00; 12,000 calls: 1,000 free, 9,000 × 0.002 = 18.00,
    # 2,000 × 0.001 = 2.00; net 68.00; a German business buyer: 19 % VAT = 12.92.
    assert invoice["currency"] == "EUR"
    assert invoice["totals"]["taxExclusiveMinor"] == 6800
    assert invoice["totals"]["taxMinor"] == 1292
    assert invoice["totals"]["amountDueMinor"] == 8092
    assert invoice["periodStart"] == MONTH.isoformat()
    tenant = db.session.scalars(sa.select(Tenant).where(Tenant.slug == company["slug"])).one()
    assert tenant.name == "Nordlicht Software"
