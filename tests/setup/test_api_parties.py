"""Contract tests of the console's sellers and companies operations: each answer in the
console's shape, and each bad input a 4xx that writes nothing."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.ops.models import AuditLogEntry
from portal.tenancy.models import BillingProfile, Seller, Tenant
from tests.api_console.conftest import admin_token
from tests.setup.logos import BILLION_LAUGHS, MALICIOUS_SVG, png

SELLERS = "/api/v1/organizations/sellers"
COMPANIES = "/api/v1/organizations/companies"

SELLER = {
    "legalName": "Example Cloud GmbH",
    "addressLine1": "Torstraße 1",
    "postalCode": "10119",
    "city": "Berlin",
    "country": "DE",
    "vatId": "DE811907980",
    "email": "billing@example.com",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "defaultPaymentTermsDays": 30,
}
PROFILE = {
    "companyName": "Nordlicht Software GmbH",
    "addressLine1": "Hafenstraße 3",
    "postalCode": "20457",
    "city": "Hamburg",
    "country": "DE",
    "billingEmail": "ap@nordlicht.example",
}


class Client:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def __call__(self, method, url, *, json_body=None, headers=None, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if json_body is not None:
            kwargs["data"] = json.dumps(json_body)
            kwargs.setdefault("content_type", "application/json")
        return self.client.open(url, method=method, headers=headers, **kwargs)


@pytest.fixture
def api(client, world):
    return Client(client, admin_token())


def _written():
    db.session.expire_all()
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Seller, Tenant, BillingProfile, AuditLogEntry)
    )


def _errors(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"errors", "data", "meta"} and body["data"] is None
    assert body["meta"]["correlationId"]
    return body["errors"]


def _seller(api, **changes):
    response = api("POST", SELLERS, json_body={**SELLER, **changes})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["data"]


# --- sellers -----------------------------------------------------------------------------------


def test_seller_create_read_list_patch(api):
    created = api("POST", SELLERS, json_body=SELLER)
    assert created.status_code == 201
    body = created.get_json()
    assert body["errors"] == [] and body["meta"]["correlationId"]
    seller = body["data"]
    assert created.headers["Location"].endswith(f"/sellers/{seller['sellerUid']}")
    assert seller["invoiceNumberFormat"] == "INV-{year}-{seq:05d}" and seller["logo"] is None
    assert seller["defaultCurrency"] == "EUR" and seller["companies"] == 0

    url = f"{SELLERS}/{seller['sellerUid']}"
    assert api("GET", url).get_json()["data"]["legalName"] == "Example Cloud GmbH"
    page = api(
        "GET",
        SELLERS,
        query_string={
            "filter": json.dumps([{"property": "/legalName", "operation": "contains",
                                   "value": "cloud"}]),  # fmt: skip
            "select": json.dumps([{"propertyPath": "/legalName"}]),
            "limit": 5,
        },
    ).get_json()
    assert page["data"] == [{"legalName": "Example Cloud GmbH"}]
    assert page["meta"]["pagingInfo"] == {"total": 1, "count": 1, "offset": 0}

    patched = api(
        "PATCH",
        url,
        json_body=[
            {"op": "test", "path": "/city", "value": "Berlin"},
            {"op": "replace", "path": "/city", "value": "Hamburg"},
            {"op": "replace", "path": "/postalCode", "value": "20095"},
            {"op": "remove", "path": "/vatId"},
        ],
        content_type="application/json-patch+json",
    )
    assert patched.status_code == 200, patched.get_json()
    data = patched.get_json()["data"]
    assert (data["city"], data["postalCode"], data["vatId"]) == ("Hamburg", "20095", None)
    entry = db.session.scalars(
        sa.select(AuditLogEntry).where(AuditLogEntry.action == "seller.update")
    ).one()
    assert entry.data["after"] == {"city": "Hamburg", "postal_code": "20095", "vat_id": None}
    assert entry.actor_token_id is not None


@pytest.mark.parametrize(
    ("changes", "location", "type_"),
    [
        ({"iban": "DE89370400440532013001"}, "body//iban", "invalid_value"),
        ({"vatId": "DE123456789"}, "body//vatId", "invalid_value"),
        ({"email": "nope"}, "body//email", "invalid_value"),
        ({"invoiceNumberFormat": "INV-{seq}"}, "body//invoiceNumberFormat", "invalid_value"),
        ({"defaultCurrency": "ABC"}, "body/defaultCurrency", "literal_error"),
        ({"defaultPaymentTermsDays": 400}, "body/defaultPaymentTermsDays", "less_than_equal"),
        ({"country": "XX"}, "body/country", "literal_error"),
        ({"legalName": "A\u0000B"}, "body/legalName", "text_nul"),
        ({"legalName": "   "}, "body/legalName", "string_pattern_mismatch"),
        ({"colour": "red"}, "body/colour", "extra_forbidden"),
        ({"city": 7}, "body/city", "string_type"),
    ],
)
def test_seller_bad_input_is_4xx_and_writes_nothing(api, changes, location, type_):
    before = _written()
    errors = _errors(api("POST", SELLERS, json_body={**SELLER, **changes}), 400)
    assert (errors[0]["location"], errors[0]["type"]) == (location, type_), errors
    assert _written() == before


def test_seller_patch_refusals_write_nothing(api):
    url = f"{SELLERS}/{_seller(api)['sellerUid']}"
    before = _written()
    for body, status in (
        ([{"op": "replace", "path": "/iban", "value": "DE00"}], 400),
        ([{"op": "replace", "path": "/sellerUid", "value": str(uuid.uuid4())}], 400),
        ([{"op": "remove", "path": "/legalName"}], 400),
        ([{"op": "test", "path": "/city", "value": "Paris"}], 409),
        ({"city": "Paris"}, 400),
    ):
        _errors(api("PATCH", url, json_body=body), status)
    assert _errors(api("PATCH", f"{SELLERS}/{uuid.uuid4()}", json_body=[]), 404)
    assert _written() == before


def test_seller_logo_upload_sanitizes_and_refuses(api):
    seller = _seller(api)
    url = f"{SELLERS}/{seller['sellerUid']}/logo"
    answer = api("PUT", url, data=MALICIOUS_SVG, content_type="image/svg+xml")
    assert answer.status_code == 200, answer.get_json()
    logo = answer.get_json()["data"]["logo"]
    assert logo["mediaType"] == "image/svg+xml"
    stored = api("GET", url)
    assert stored.status_code == 200 and stored.mimetype == "image/svg+xml"
    assert b"script" not in stored.data and b"onload" not in stored.data
    assert "sandbox" in stored.headers["Content-Security-Policy"]

    before = _written()
    for content, media in (
        (BILLION_LAUGHS, "image/svg+xml"),
        (b"GIF89a", "image/png"),
        (png()[:50], "image/png"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'>" + b" " * 600_000 + b"</svg>", "image/svg+xml"),
        (png(), "image/gif"),
    ):
        response = api("PUT", url, data=content, content_type=media)
        assert 400 <= response.status_code < 500, response.status_code
    assert _written() == before
    assert api("GET", url).data == stored.data  # the earlier logo is still there

    png_answer = api("PUT", url, data=png(), content_type="image/png")
    assert png_answer.get_json()["data"]["logo"]["mediaType"] == "image/png"
    removed = api("DELETE", url).get_json()["data"]
    assert removed["logo"] is None
    _errors(api("GET", url), 404)


def test_seller_requests_are_idempotent(api):
    key = str(uuid.uuid4())
    first = api("POST", SELLERS, json_body=SELLER, headers={"X-Request-id": key})
    again = api("POST", SELLERS, json_body=SELLER, headers={"X-Request-id": key})
    assert first.status_code == again.status_code == 201
    assert first.get_json()["data"] == again.get_json()["data"]
    assert db.session.scalar(
        sa.select(sa.func.count()).where(Seller.legal_name == "Example Cloud GmbH")
    ) == 1  # fmt: skip
    changed = {**SELLER, "city": "Köln"}
    other = api("POST", SELLERS, json_body=changed, headers={"X-Request-id": key})
    assert other.status_code == 409


def test_seller_api_needs_an_admin_token(client, world):
    assert client.get(SELLERS).status_code == 401
    reader = Client(client, admin_token(scopes=("admin:read",)))
    assert reader("GET", SELLERS).status_code == 200
    assert reader("POST", SELLERS, json_body=SELLER).status_code == 403


def test_seller_openapi_document(client):
    spec = client.get(f"{SELLERS}/openapi.json").get_json()
    paths = spec["paths"]
    assert set(paths) == {SELLERS, f"{SELLERS}/{{sellerUid}}", f"{SELLERS}/{{sellerUid}}/logo"}
    assert set(paths[f"{SELLERS}/{{sellerUid}}/logo"]) == {"get", "put", "delete"}
    put = paths[f"{SELLERS}/{{sellerUid}}/logo"]["put"]
    assert set(put["requestBody"]["content"]) == {"image/png", "image/svg+xml"}
    docs = client.get(f"{SELLERS}/docs")
    assert docs.status_code == 200 and "Upload Seller Logo" in docs.get_data(as_text=True)


# --- companies ---------------------------------------------------------------------------------


def _company_body(seller_uid, **changes):
    return {"name": "Nordlicht Software", "sellerUid": seller_uid, "language": "de",
            "billingProfile": dict(PROFILE), **changes}  # fmt: skip


def test_company_create_read_list_patch_archive(api, world):
    seller = _seller(api)
    created = api("POST", COMPANIES, json_body=_company_body(
        seller["sellerUid"], billingSettings={"billingDay": 3, "autoSend": True}))  # fmt: skip
    assert created.status_code == 201, created.get_json()
    company = created.get_json()["data"]
    assert company["slug"] == "nordlicht-software" and company["currency"] == "EUR"
    assert company["language"] == "de" and company["archived"] is False
    assert company["billingProfile"]["paymentTermsDays"] == 30  # the seller's default
    uid = company["companyUid"]
    url = f"{COMPANIES}/{uid}"
    settings = api("GET", f"{url}/billing/settings/").get_json()["data"]
    assert settings["billingDay"] == 3 and settings["autoSend"] is True

    listed = api("GET", COMPANIES, query_string={
        "filter": json.dumps([{"property": "/sellerUid", "operation": "equals",
                               "value": seller["sellerUid"]}]),
        "select": json.dumps([{"propertyPath": "/slug"}, {"propertyPath": "/language"}]),
    }).get_json()  # fmt: skip
    assert listed["data"] == [{"slug": "nordlicht-software", "language": "de"}]

    patched = api("PATCH", url, json_body=[
        {"op": "replace", "path": "/name", "value": "Nordlicht AG"},
        {"op": "replace", "path": "/slug", "value": "nordlicht"},
        {"op": "replace", "path": "/billingProfile/city", "value": "Kiel"},
        {"op": "replace", "path": "/language", "value": "en"},
    ])  # fmt: skip
    assert patched.status_code == 200, patched.get_json()
    data = patched.get_json()["data"]
    assert (data["name"], data["slug"], data["language"]) == ("Nordlicht AG", "nordlicht", "en")
    assert data["billingProfile"]["city"] == "Kiel"

    archived = api("DELETE", url)
    assert archived.status_code == 200 and archived.get_json()["data"]["archived"] is True
    assert api("GET", url).get_json()["data"]["archivedAt"]
    [error] = _errors(api("DELETE", url), 409)
    assert error["type"] == "already_archived"
    [error] = _errors(api("PATCH", url, json_body=[
        {"op": "replace", "path": "/name", "value": "Back"}]), 409)  # fmt: skip
    assert error["type"] == "archived"
    archived_only = api("GET", COMPANIES, query_string={"filter": json.dumps(
        [{"property": "/archived", "operation": "equals", "value": True}])}).get_json()  # fmt: skip
    assert [c["companyUid"] for c in archived_only["data"]] == [uid]


def test_archived_company_history_stays_readable(api, world):
    tenant = world.a.tenant
    url = f"{COMPANIES}/{tenant.public_id}"
    assert api("DELETE", url).status_code == 200
    invoices = api("GET", f"{url}/billing/invoices",
                   query_string={"fromDate": "2026-01-01", "toDate": "2026-12-31"})  # fmt: skip
    assert invoices.status_code == 200
    assert [i["instanceUid"] for i in invoices.get_json()["data"]] == [
        str(world.a.invoice.public_id)
    ]
    one = api("GET", f"{COMPANIES}/billing/invoices/{world.a.invoice.public_id}")
    assert one.status_code == 200
    generate = api("POST", f"{url}/billing/generateInvoices", query_string={"period": "2026-11"})
    assert generate.status_code == 400 and generate.get_json()["errors"][0]["type"] == "archived"
    assert db.session.scalar(sa.select(sa.func.count()).where(Invoice.tenant_id == tenant.id)) == 1


@pytest.mark.parametrize(
    ("changes", "status", "location"),
    [
        ({"slug": "taken"}, 409, "body//slug"),
        ({"sellerUid": "00000000-0000-4000-8000-000000000000"}, 400, "body//sellerUid"),
        ({"sellerUid": "not-a-uuid"}, 400, "body//sellerUid"),
        ({"currency": "ABC"}, 400, "body/currency"),
        ({"currency": "eur"}, 400, "body/currency"),
        ({"language": "fr"}, 400, "body/language"),
        ({"slug": "Not A Slug"}, 400, "body/slug"),
        ({"name": "Nul\u0000"}, 400, "body/name"),
        ({"billingProfile": {**PROFILE, "vatId": "DE000"}}, 400, "body//billingProfile/vatId"),
        ({"billingProfile": {**PROFILE, "billingEmail": "x"}}, 400,
         "body//billingProfile/billingEmail"),
        ({"billingProfile": {**PROFILE, "country": "XX"}}, 400, "body/billingProfile/country"),
        ({"billingProfile": {**PROFILE, "city": "a\u0000b"}}, 400, "body/billingProfile/city"),
        ({"billingProfile": None}, 400, "body/billingProfile"),
        ({"billingSettings": {"billingDay": 29}}, 400, "body/billingSettings/billingDay"),
        ({"extra": True}, 400, "body/extra"),
    ],
)
def test_company_bad_input_is_4xx_and_writes_nothing(api, changes, status, location):
    seller = _seller(api)
    taken = api("POST", COMPANIES, json_body=_company_body(seller["sellerUid"], slug="taken"))
    assert taken.status_code == 201
    before = _written()
    body = _company_body(seller["sellerUid"], **changes)
    errors = _errors(api("POST", COMPANIES, json_body=body), status)
    assert location in [e["location"] for e in errors], errors
    assert _written() == before


def test_company_patch_refusals_write_nothing(api, world):
    url = f"{COMPANIES}/{world.a.tenant.public_id}"
    before = _written()
    for body, status in (
        ([{"op": "replace", "path": "/slug", "value": world.b.tenant.slug}], 409),
        ([{"op": "replace", "path": "/currency", "value": "USD"}], 400),  # invoiced in EUR
        ([{"op": "replace", "path": "/sellerUid", "value": str(uuid.uuid4())}], 400),
        ([{"op": "replace", "path": "/billingProfile/vatId", "value": "DE1"}], 400),
        ([{"op": "replace", "path": "/archived", "value": True}], 400),
        ([{"op": "remove", "path": "/name"}], 400),
        ([{"op": "test", "path": "/name", "value": "Other"}], 409),
    ):
        _errors(api("PATCH", url, json_body=body), status)
    _errors(api("DELETE", f"{COMPANIES}/{uuid.uuid4()}"), 404)
    _errors(api("GET", f"{COMPANIES}/not-a-uuid"), 404)
    assert _written() == before
