"""Contract tests of the catalog in the console API: products, prices, coupons."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from portal.catalog.models import Coupon, Plan, Price, PriceTier
from portal.extensions import db
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.ops.models import AuditLogEntry
from tests.api_console.conftest import admin_token
from tests.factories.tenancy import SellerFactory
from tests.setup.catalog_support import company, count, subscribe, use

BASE = "/api/v1/organizations/billing"


class Client:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def __call__(self, method, path, *, token=None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        headers.setdefault("Authorization", f"Bearer {token or self.token}")
        return self.client.open(BASE + path, method=method, headers=headers, **kwargs)


@pytest.fixture
def api(client, app):
    return Client(client, admin_token())


@pytest.fixture
def seller(app):
    seller = SellerFactory()
    db.session.commit()
    return seller


@pytest.fixture
def product(api, seller):
    answer = api(
        "POST",
        "/products",
        json={"sellerUid": str(seller.public_id), "code": "cloud", "name": "Cloud"},
    )
    assert answer.status_code == 201, answer.json
    return answer.json["data"]


GRADUATED = {
    "code": "api",
    "nickname": "API calls",
    "currency": "EUR",
    "model": "graduated",
    "usageKind": "metered",
    "metric": "api_calls",
    "tiers": [
        {"upTo": "1000", "unitAmount": "0"},
        {"upTo": 10000, "unitAmount": "0.002"},
        {"upTo": None, "unitAmount": 0.001},
    ],
}


def _written():
    return tuple(count(m) for m in (Plan, Price, PriceTier, Coupon, AuditLogEntry))


def test_products_crud(api, seller, product):
    assert product["code"] == "cloud" and product["archived"] is False
    uid = product["productUid"]
    listed = api("GET", "/products").json
    assert listed["meta"]["pagingInfo"]["total"] == 1
    assert api("GET", f"/products/{uid}").json["data"]["name"] == "Cloud"
    patched = api("PATCH", f"/products/{uid}", json={"name": "Cloud 2"})
    assert patched.status_code == 200 and patched.json["data"]["name"] == "Cloud 2"
    deleted = api("DELETE", f"/products/{uid}")
    assert deleted.status_code == 200 and deleted.json["data"]["archived"] is True
    assert api("GET", f"/products/{uid}").json["data"]["archived"] is True  # kept
    filtered = api(
        "GET",
        "/products",
        query_string={
            "filter": '[{"property": "/archived", "operation": "equals", "value": false}]'
        },
    )
    assert filtered.json["meta"]["pagingInfo"]["total"] == 0


def test_prices_in_every_model_and_versions(api, seller, product):
    puid = product["productUid"]
    bodies = [
        {
            "code": "flat",
            "nickname": "Platform",
            "currency": "EUR",
            "model": "flat",
            "unitAmount": "49.00",
        },
        {
            "code": "seats",
            "nickname": "Seats",
            "currency": "EUR",
            "model": "per_unit",
            "unitAmount": 12,
            "trialDays": 14,
            "selfServe": True,
        },
        {
            "code": "gb",
            "nickname": "Storage",
            "currency": "EUR",
            "model": "package",
            "unitAmount": "10",
            "packageSize": "100",
            "usageKind": "metered",
            "metric": "gb",
        },
        {
            "code": "vol",
            "nickname": "Licences",
            "currency": "EUR",
            "model": "volume",
            "tiers": [{"upTo": 10, "unitAmount": "5"}, {"unitAmount": "4"}],
            "interval": "year",
            "taxTreatment": "goods",
        },
        GRADUATED,
    ]
    created = []
    for body in bodies:
        answer = api("POST", "/prices", json={"productUid": puid, **body})
        assert answer.status_code == 201, answer.json
        created.append(answer.json["data"])
    api_price = created[-1]
    assert [t["upTo"] for t in api_price["tiers"]] == ["1000", "10000", None]
    assert api_price["version"] == 1 and api_price["replacesUid"] is None
    assert api("GET", "/prices").json["meta"]["pagingInfo"]["total"] == 5

    # Invoice the graduated price, then edit it: a new version answers.
    price = db.session.scalars(sa.select(Price).where(Price.code == "api")).one()
    tenant = company(seller)
    subscribe(tenant, [(price, 0)])
    use(tenant, "api_calls", 5000, "api-1")
    [invoice] = generate_invoices(db.session, [tenant], "2026-10")
    finalize_invoice(db.session, invoice, issue_date=dt.date(2026, 11, 1))
    db.session.commit()
    patched = api("PATCH", f"/prices/{api_price['priceUid']}", json={"nickname": "Calls"})
    assert patched.status_code == 200, patched.json
    new = patched.json["data"]
    assert new["priceUid"] != api_price["priceUid"]
    assert (new["version"], new["replacesUid"], new["code"]) == (2, api_price["priceUid"], "api")
    old = api("GET", f"/prices/{api_price['priceUid']}").json["data"]
    assert (old["code"], old["archived"]) == ("api@v1", True)
    deleted = api("DELETE", f"/prices/{new['priceUid']}")
    assert deleted.status_code == 200 and deleted.json["data"]["archived"] is True


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({**GRADUATED, "currency": "EUX"}, "body//currency"),
        (
            {
                **GRADUATED,
                "tiers": [
                    {"upTo": 10, "unitAmount": 1},
                    {"upTo": 5, "unitAmount": 1},
                    {"unitAmount": 1},
                ],
            },
            "body//tiers/1/upTo",
        ),
        ({**GRADUATED, "metric": None}, "body//metric"),
        (
            {
                "code": "p",
                "nickname": "P",
                "currency": "EUR",
                "model": "package",
                "unitAmount": "1",
            },
            "body//packageSize",
        ),
        (
            {
                "code": "p",
                "nickname": "P",
                "currency": "EUR",
                "model": "flat",
                "unitAmount": 10**30,
            },
            "body//unitAmount",
        ),
        (
            {
                "code": "p",
                "nickname": "P",
                "currency": "EUR",
                "model": "flat",
                "unitAmount": "1e30",
            },
            "body//unitAmount",
        ),
        (
            {"code": "p", "nickname": "P", "currency": "EUR", "model": "weird", "unitAmount": "1"},
            "body//model",
        ),
        ({**GRADUATED, "colour": "red"}, "body/colour"),
        ({**GRADUATED, "tiers": "many"}, "body/tiers"),
    ],
)
def test_bad_prices_answer_400_and_write_nothing(api, product, body, location):
    before = _written()
    answer = api("POST", "/prices", json={"productUid": product["productUid"], **body})
    assert answer.status_code == 400, answer.json
    assert answer.json["data"] is None
    assert location in [e["location"] for e in answer.json["errors"]], answer.json
    assert _written() == before


def test_nul_bytes_and_unknown_product_write_nothing(api, product):
    before = _written()
    nul = api(
        "POST",
        "/prices",
        json={"productUid": product["productUid"], **GRADUATED, "nickname": "a\x00b"},
    )
    assert nul.status_code == 400
    unknown = api("POST", "/prices", json={"productUid": str(uuid.uuid4()), **GRADUATED})
    assert unknown.status_code == 404
    assert unknown.json["errors"][0]["location"] == "body//productUid"
    junk = api("POST", "/prices", json={"productUid": 12, **GRADUATED})
    assert junk.status_code == 404
    assert api("GET", f"/prices/{uuid.uuid4()}").status_code == 404
    assert api("GET", "/prices/not-a-uuid").status_code == 404
    assert api("PATCH", f"/products/{uuid.uuid4()}", json={"name": "x"}).status_code == 404
    assert (
        api(
            "POST", "/products", json={"sellerUid": str(uuid.uuid4()), "code": "x", "name": "x"}
        ).status_code
        == 404
    )
    assert api("POST", "/prices", data="not json", content_type="text/plain").status_code == 400
    assert _written() == before


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"percentOff": 0}, "body//percentOff"),
        ({"percentOff": 101}, "body//percentOff"),
        ({"percentOff": "1e30"}, "body//percentOff"),
        ({"amountOffMinor": 10**30, "currency": "EUR"}, "body//amountOffMinor"),
        ({"amountOffMinor": 100}, "body//currency"),
        (
            {"amountOffMinor": 100, "currency": "EUR", "duration": "repeating"},
            "body//durationPeriods",
        ),
        ({"percentOff": 10, "duration": "sometimes"}, "body//duration"),
    ],
)
def test_bad_coupons_answer_400_and_write_nothing(api, seller, body, location):
    before = _written()
    answer = api(
        "POST",
        "/coupons",
        json={"sellerUid": str(seller.public_id), "code": "C", "name": "C", **body},
    )
    assert answer.status_code == 400, answer.json
    assert location in [e["location"] for e in answer.json["errors"]], answer.json
    assert _written() == before


def test_coupons_create_read_archive(api, seller):
    answer = api(
        "POST",
        "/coupons",
        json={
            "sellerUid": str(seller.public_id),
            "code": "TEN",
            "name": "Ten off",
            "amountOffMinor": 1000,
            "currency": "EUR",
            "duration": "repeating",
            "durationPeriods": 3,
        },
    )
    assert answer.status_code == 201, answer.json
    uid = answer.json["data"]["couponUid"]
    assert api("GET", f"/coupons/{uid}").json["data"]["durationPeriods"] == 3
    assert api("GET", "/coupons").json["meta"]["pagingInfo"]["total"] == 1
    assert api("DELETE", f"/coupons/{uid}").json["data"]["archived"] is True
    assert api("GET", f"/coupons/{uuid.uuid4()}").status_code == 404
    pct = api(
        "POST",
        "/coupons",
        json={"sellerUid": str(seller.public_id), "code": "P", "name": "P", "percentOff": "12.5"},
    )
    assert pct.status_code == 201 and pct.json["data"]["percentOff"] == "12.5"


def test_idempotent_creation_and_tokens(api, seller):
    key = str(uuid.uuid4())
    body = {"sellerUid": str(seller.public_id), "code": "same", "name": "Same"}
    first = api("POST", "/products", json=body, headers={"X-Request-id": key})
    again = api("POST", "/products", json=body, headers={"X-Request-id": key})
    assert first.status_code == again.status_code == 201
    assert first.json["data"]["productUid"] == again.json["data"]["productUid"]
    assert count(Plan) == 1
    read_only = admin_token(scopes=("admin:read",))
    assert api("POST", "/products", json=body, token=read_only).status_code == 403
    assert api("GET", "/products", token="nope").status_code == 401
    assert api("GET", "/openapi.json").status_code == 200
