"""Bad input on the tenant API is a 4xx in its ``{detail}`` shape and writes nothing.

Deeply nested JSON, bodies over MAX_CONTENT_LENGTH, NUL characters and lone surrogates in
any text field (values and keys), non-finite numbers and NULs in the query string.
"""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.tenancy.models import BillingProfile
from portal.tenancy.profiles import ProfileInput, get_billing_profile
from tests.api.test_billing_api import PROFILE

#: Every text field of the profile the API takes (not the choices, which are checked too).
TEXT_FIELDS = [
    "company_name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "region",
    "country",
    "vat_id",
    "tax_exemption_reason",
    "billing_email",
    "contact_name",
    "phone",
    "buyer_reference",
    "purchase_order",
    "peppol_endpoint_id",
    "peppol_endpoint_scheme",
    "language",
]


def _stored(tenant) -> tuple[int, dict]:
    """How many profiles exist and the tenant's, field by field (to see nothing changed)."""
    db.session.expire_all()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(BillingProfile))
    profile = get_billing_profile(db.session, tenant)
    return count, dataclasses.asdict(ProfileInput.from_profile(profile))


def _detail(response, status: int) -> list[dict]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"detail"}
    for entry in body["detail"]:
        assert set(entry) >= {"loc", "msg", "type"} and entry["msg"]
    return body["detail"]


def _put_raw(api, body: str | bytes):
    return api.put("/billing-profile", data=body, content_type="application/json")


def test_deeply_nested_json_is_422_and_writes_nothing(api, world):
    before = _stored(world.a.tenant)
    [error] = _detail(_put_raw(api, "[" * 100_000), 422)
    assert error["loc"] == ["body"] and error["type"] == "json_too_deep"
    assert _stored(world.a.tenant) == before


def test_depth_limit_follows_the_setting(app, api, world):
    app.config["JSON_MAX_DEPTH"] = 3
    before = _stored(world.a.tenant)
    body = json.dumps({**PROFILE, "company_name": [[["Alpha"]]]})  # four levels
    [error] = _detail(_put_raw(api, body), 422)
    assert error["loc"] == ["body", "company_name", 0, 0]
    assert error["type"] == "json_too_deep" and "at most 3 levels" in error["msg"]
    assert _stored(world.a.tenant) == before
    # Within the limit the body reaches validation (and then fails as a wrong type).
    [error] = _detail(_put_raw(api, json.dumps({**PROFILE, "company_name": [["A"]]})), 422)
    assert error["type"] != "json_too_deep"


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_nul_in_any_text_field_is_422_at_the_field(api, world, field):
    before = _stored(world.a.tenant)
    body = {**PROFILE, "tax_exempt": True, "tax_exemption_reason": "Kleinunternehmer"}
    body[field] = f"{body.get(field) or 'x'}\u0000"
    [error] = _detail(api.put("/billing-profile", json=body), 422)
    assert error["loc"] == ["body", field]
    assert error["type"] == "text_nul" and "NUL" in error["msg"]
    assert _stored(world.a.tenant) == before


def test_nul_in_a_list_item_and_in_a_key_are_located(api, world):
    before = _stored(world.a.tenant)
    body = json.dumps({**PROFILE, "cc_emails": ["ok@alpha.example", "x\u0000@alpha.example"]})
    [error] = _detail(_put_raw(api, body), 422)
    assert error["loc"] == ["body", "cc_emails", 1] and error["type"] == "text_nul"
    [error] = _detail(_put_raw(api, json.dumps({**PROFILE, "ci\u0000ty": "Hamburg"})), 422)
    assert error["loc"] == ["body", "ci\\u0000ty"] and error["type"] == "text_nul"
    assert _stored(world.a.tenant) == before


def test_lone_surrogates_are_422_at_the_field(api, world):
    before = _stored(world.a.tenant)
    escaped = json.dumps(PROFILE)[:-1] + ', "city": "Ham\\ud800burg"}'
    [error] = _detail(_put_raw(api, escaped), 422)
    assert error["loc"] == ["body", "city"] and error["type"] == "text_surrogate"
    # The same surrogate encoded as bytes is not UTF-8 at all.
    encoded = json.dumps(PROFILE).encode().replace(b"Hamburg", b"Ham\xed\xa0\x80burg")
    [error] = _detail(_put_raw(api, encoded), 422)
    assert error["loc"] == ["body"] and error["type"] == "json_invalid"
    assert _stored(world.a.tenant) == before


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_422(api, world, number):
    before = _stored(world.a.tenant)
    body = json.dumps(PROFILE)[:-1] + f', "phone": {number}}}'
    [error] = _detail(_put_raw(api, body), 422)
    assert error["loc"] == ["body", "phone"] and error["type"] == "number_not_finite"
    assert _stored(world.a.tenant) == before


def test_body_over_the_size_limit_is_413_in_the_error_shape(app, api, world):
    before = _stored(world.a.tenant)
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 1024 * 1024  # the default
    body = json.dumps({**PROFILE, "purchase_order": "x" * limit})
    [error] = _detail(_put_raw(api, body), 413)
    assert error["type"] == "request_entity_too_large"
    assert _stored(world.a.tenant) == before


def _put_chunked(api, body: bytes):
    """A PUT without Content-Length (Transfer-Encoding: chunked, as a server passes it on)."""
    return api.put(
        "/billing-profile",
        headers={"Transfer-Encoding": "chunked"},
        content_type="application/json",
        environ_overrides={"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )


def test_chunked_body_over_the_limit_is_413_not_a_truncated_body(app, api, world):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    before = _stored(world.a.tenant)
    body = json.dumps({**PROFILE, "purchase_order": "x" * 10_000}).encode()
    [error] = _detail(_put_chunked(api, body), 413)
    assert error["type"] == "request_entity_too_large"
    assert _stored(world.a.tenant) == before
    # Within the limit a chunked body is read whole.
    response = _put_chunked(api, json.dumps({**PROFILE, "city": "Lübeck"}).encode())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["city"] == "Lübeck"


def test_nul_in_the_query_string_is_422_at_the_parameter(api):
    [error] = _detail(api.get("/invoices?number=%00INV"), 422)
    assert error["loc"] == ["query", "number"] and error["type"] == "text_nul"


def test_nul_in_a_path_parameter_is_404(api):
    assert _detail(api.get("/invoices/%00"), 404)[0]["type"] == "not_found"


def test_valid_unicode_is_still_taken(api, world):
    body = {**PROFILE, "company_name": "Ærø Café 東京 🧾"}
    response = api.put("/billing-profile", json=body)
    assert response.status_code == 200, response.get_json()
    assert get_billing_profile(db.session, world.a.tenant).company_name == "Ærø Café 東京 🧾"
