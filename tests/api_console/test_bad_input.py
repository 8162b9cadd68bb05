"""Bad input on the provider console is a 4xx in its ``{errors, data, meta}`` shape and
writes nothing: no settings row, no audit entry."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings
from portal.extensions import db
from portal.ops.models import AuditLogEntry


def _url(tenant) -> str:
    return f"/{tenant.public_id}/billing/settings/"


def _written() -> tuple[int, int, list]:
    """Settings rows, audit entries and every company's notes: what a PATCH would change."""
    db.session.expire_all()
    settings = db.session.scalar(sa.select(sa.func.count()).select_from(CompanyBillingSettings))
    audits = db.session.scalar(sa.select(sa.func.count()).select_from(AuditLogEntry))
    notes = list(db.session.scalars(sa.select(CompanyBillingSettings.notes)))
    return settings, audits, notes


def _errors(response, status: int) -> list[dict]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"errors", "data", "meta"}
    assert body["data"] is None and body["meta"]["correlationId"]
    for error in body["errors"]:
        assert set(error) == {"code", "type", "message", "location"}
        assert error["code"] == status and error["message"]
    return body["errors"]


def _patch(console, tenant, body: str | bytes, **kwargs):
    return console.patch(_url(tenant), data=body, content_type="application/json", **kwargs)


@pytest.fixture
def existing(console, world):
    """Company A with settings (one audited change), so an overwrite would show."""
    ok = console.patch(
        _url(world.a.tenant), json=[{"op": "replace", "path": "/notes", "value": "Before"}]
    )
    assert ok.status_code == 200, ok.get_json()
    return _written()


def test_deeply_nested_patch_is_400_and_writes_nothing(console, world, existing):
    [error] = _errors(_patch(console, world.a.tenant, "[" * 100_000), 400)
    assert error["type"] == "json_too_deep" and error["location"] == "body"
    assert _written() == existing


def test_nested_value_over_the_depth_limit_is_located(app, console, world, existing):
    app.config["JSON_MAX_DEPTH"] = 4
    patch = [{"op": "replace", "path": "/notes", "value": [[["deep"]]]}]  # five levels
    [error] = _errors(_patch(console, world.a.tenant, json.dumps(patch)), 400)
    assert error["type"] == "json_too_deep" and error["location"] == "body//notes/0/0"
    assert _written() == existing


@pytest.mark.parametrize(
    ("value", "kind"),
    [('"Key\\u0000account"', "text_nul"), ('"Key\\ud800account"', "text_surrogate")],
)
def test_unstorable_text_in_a_setting_is_400_at_the_setting(console, world, existing, value, kind):
    body = f'[{{"op": "replace", "path": "/notes", "value": {value}}}]'
    [error] = _errors(_patch(console, world.a.tenant, body), 400)
    assert error["type"] == kind and error["location"] == "body//notes"
    assert _written() == existing


def test_nul_in_an_operation_is_400_at_that_operation(console, world, existing):
    body = json.dumps([{"op": "replace", "path": "/notes\u0000", "value": "x"}])
    [error] = _errors(_patch(console, world.a.tenant, body), 400)
    assert error["type"] == "text_nul" and error["location"] == "body/0/path"
    assert _written() == existing


def test_patch_over_the_size_limit_is_413(app, console, world, existing):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    patch = [{"op": "replace", "path": "/notes", "value": "x" * 10_000}]
    [error] = _errors(_patch(console, world.a.tenant, json.dumps(patch)), 413)
    assert error["type"] == "request_entity_too_large"
    assert _written() == existing


def test_patch_of_another_content_type_is_400(console, world, existing):
    response = console.patch(_url(world.a.tenant), data="notes=x", content_type="text/plain")
    [error] = _errors(response, 400)
    assert error["location"] == "body"
    assert _written() == existing


@pytest.mark.parametrize(
    ("param", "raw", "kind"),
    [
        ("filter", "[" * 500 + "]" * 500, "json_too_deep"),
        (
            "filter",
            '[{"property": "/notes", "operation": "equals", "value": "a\\u0000"}]',
            "text_nul",
        ),
        ("sort", '[{"property": "/notes\\ud800", "direction": "ascending"}]', "text_surrogate"),
        ("select", "[" * 100 + "]" * 100, "json_too_deep"),
    ],
)
def test_bad_json_in_the_query_is_400_at_the_parameter(console, world, param, raw, kind):
    [error] = _errors(console.get("/billing/settings/", query_string={param: raw}), 400)
    assert error["type"] == kind and error["location"] == f"query/{param}"


def test_bad_select_on_one_resource_is_400(console, world):
    response = console.get(_url(world.a.tenant), query_string={"select": "[" * 100 + "]" * 100})
    [error] = _errors(response, 400)
    assert error["location"] == "query/select"


def test_valid_unicode_is_still_taken(console, world):
    note = "Ærø Café 東京 🧾"
    response = console.patch(
        _url(world.a.tenant), json=[{"op": "replace", "path": "/notes", "value": note}]
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["notes"] == note


@pytest.mark.parametrize("note", ["Key\u0000account", "Key\ud800account"])
def test_settings_service_refuses_unstorable_notes_whoever_calls_it(note):
    from portal.catalog.settings import SettingsInvalid, validate_settings

    values = {
        "billing_day": 1,
        "payment_terms_days": None,
        "auto_finalize": True,
        "auto_send": False,
        "auto_collect": True,
        "show_drafts_to_tenant": False,
        "discount_percent": "0",
        "notes": note,
    }
    assert validate_settings({**values, "notes": "Key account"})["notes"] == "Key account"
    with pytest.raises(SettingsInvalid) as refused:
        validate_settings(values)
    assert set(refused.value.errors) == {"notes"} and "NUL" in refused.value.errors["notes"]
