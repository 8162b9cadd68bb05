"""Bad input on the account API is a 4xx GenericResponse and writes nothing."""

from __future__ import annotations

import dataclasses
import json

import pytest
import sqlalchemy as sa

from portal.api.accounts.schemas import GenericResponse
from portal.extensions import db
from portal.tenancy.models import BillingProfile
from portal.tenancy.profiles import ProfileInput, get_billing_profile
from portal.usage.models import UsageRecord

PROFILE = {
    "companyName": "Alpha Industries GmbH",
    "addressLine1": "Hauptstr. 1",
    "postalCode": "10115",
    "city": "Berlin",
    "country": "DE",
    "billingEmail": "ap@alpha.example",
    "ccEmails": ["cfo@alpha.example"],
    "language": "de",
}
CONSUMPTION = {
    "metric": "api_calls",
    "quantity": "12.5",
    "occurredAt": "2026-10-03T10:00:00Z",
    "idempotencyKey": "k-1",
}


def _generic(response, status: int, code: str) -> GenericResponse:
    assert response.status_code == status, response.get_data(as_text=True)
    error = GenericResponse.model_validate(response.get_json())
    assert (error.status, error.code) == (status, code)
    assert error.request_id and error.message and error.errors
    return error


def _profile(tenant) -> tuple[int, dict]:
    db.session.expire_all()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(BillingProfile))
    profile = get_billing_profile(db.session, tenant)
    return count, dataclasses.asdict(ProfileInput.from_profile(profile))


def _usage_records() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(UsageRecord))


def _put_raw(accounts, body: str | bytes):
    return accounts.put("/billing-info", data=body, content_type="application/json")


def test_deeply_nested_body_is_400_and_writes_nothing(accounts, world):
    before = _profile(world.a.tenant)
    error = _generic(_put_raw(accounts, "[" * 100_000), 400, "bad_request")
    assert error.errors[0].field == "body" and error.errors[0].type == "json_too_deep"
    assert _profile(world.a.tenant) == before


@pytest.mark.parametrize("field", ["companyName", "addressLine1", "city", "billingEmail"])
def test_nul_in_a_text_field_is_400_at_the_field(accounts, world, field):
    before = _profile(world.a.tenant)
    error = _generic(
        accounts.put("/billing-info", json={**PROFILE, field: PROFILE[field] + "\u0000"}),
        400,
        "bad_request",
    )
    assert [(e.field, e.type) for e in error.errors] == [(f"body.{field}", "text_nul")]
    assert _profile(world.a.tenant) == before


def test_lone_surrogate_is_400_at_the_field(accounts, world):
    before = _profile(world.a.tenant)
    body = json.dumps(PROFILE)[:-1] + ', "region": "\\udfff"}'
    error = _generic(_put_raw(accounts, body), 400, "bad_request")
    assert [(e.field, e.type) for e in error.errors] == [("body.region", "text_surrogate")]
    assert _profile(world.a.tenant) == before


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"properties": {"plan": "pro\u0000"}}, "body.properties.plan", "text_nul"),
        ({"properties": {"pl\u0000an": "pro"}}, "body.properties.pl\\u0000an", "text_nul"),
        ({"metric": "api\u0000calls"}, "body.metric", "text_nul"),
        ({"idempotencyKey": "k\u00001"}, "body.idempotencyKey", "text_nul"),
    ],
)
def test_unstorable_consumption_is_400_and_records_nothing(accounts, world, change, field, kind):
    before = _usage_records()
    error = _generic(
        accounts.post("/consumptions", json={**CONSUMPTION, **change}), 400, "bad_request"
    )
    assert [(e.field, e.type) for e in error.errors] == [(field, kind)]
    assert _usage_records() == before


def test_non_finite_number_in_properties_is_400(accounts, world):
    before = _usage_records()
    body = json.dumps(CONSUMPTION)[:-1] + ', "properties": {"ratio": NaN}}'
    response = accounts.post("/consumptions", data=body, content_type="application/json")
    error = _generic(response, 400, "bad_request")
    assert [(e.field, e.type) for e in error.errors] == [
        ("body.properties.ratio", "number_not_finite")
    ]
    assert _usage_records() == before


def test_body_over_the_size_limit_is_413(app, accounts, world):
    app.config["MAX_CONTENT_LENGTH"] = 2_000
    before = _usage_records()
    body = {**CONSUMPTION, "properties": {"note": "x" * 2_000}}
    _generic(accounts.post("/consumptions", json=body), 413, "payload_too_large")
    assert _usage_records() == before


def test_nul_in_the_query_is_400(accounts):
    error = _generic(accounts.get("/consumptions?metric=a%00"), 400, "bad_request")
    assert [(e.field, e.type) for e in error.errors] == [("query.metric", "text_nul")]


def test_a_good_consumption_is_still_recorded(accounts, world):
    body = {**CONSUMPTION, "properties": {"region": "Zürich 東京"}}
    assert accounts.post("/consumptions", json=body).status_code == 201
    assert _usage_records() == 1
