"""Contract tests of the tenant API's subscription operations (self-service): reading,
preview, change, cancel at period end, resume; bad input, settings, scopes, other tenants."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.api.billing.subscription_schemas import (
    SubscriptionPreviewResponse,
    SubscriptionResponse,
)
from portal.catalog.models import Subscription, SubscriptionItem, SubscriptionStatus
from portal.catalog.subscriptions import cancel_subscription
from portal.ops.models import AuditLogEntry
from tests.web.selfserve_support import (
    ANCHOR,
    OPERATOR,
    TODAY,
    counts,
    self_serve_subscription,
    set_self_service,
)

OPERATIONS = {
    ("GET", "/api/v1/billing/subscriptions"): "billing:read",
    ("GET", "/api/v1/billing/subscriptions/{subscription_id}"): "billing:read",
    ("POST", "/api/v1/billing/subscriptions/{subscription_id}/preview"): "billing:write",
    ("PATCH", "/api/v1/billing/subscriptions/{subscription_id}"): "billing:write",
    ("POST", "/api/v1/billing/subscriptions/{subscription_id}/cancel"): "billing:write",
    ("POST", "/api/v1/billing/subscriptions/{subscription_id}/resume"): "billing:write",
}
WRITES = [
    ("POST", "/subscriptions/{id}/preview", {"price_id": "{seat}", "quantity": "5"}),
    ("PATCH", "/subscriptions/{id}", {"price_id": "{seat}", "quantity": "5"}),
    ("POST", "/subscriptions/{id}/cancel", {"reason": "too_expensive"}),
    ("POST", "/subscriptions/{id}/resume", None),
]


@pytest.fixture
def ss(world):
    return self_serve_subscription(world.a.tenant)


def _fill(ss, path: str, body):
    path = path.replace("{id}", ss.uid)
    if isinstance(body, dict):
        body = {k: v.replace("{seat}", str(ss.seat.public_id)) for k, v in body.items()}
    return path, body


def _quantity(session, ss) -> Decimal:
    session.expire_all()
    item = session.scalars(
        sa.select(SubscriptionItem).where(SubscriptionItem.price_id == ss.seat.id)
    ).one_or_none()
    return item.quantity if item else None


def test_the_document_lists_the_operations_with_their_scopes_and_bodies(app):
    spec = app.test_client().get("/api/v1/billing/openapi.json").get_json()
    for (method, path), scope in OPERATIONS.items():
        entry = spec["paths"][path][method.lower()]
        assert entry["x-required-scope"] == scope
        assert "404" in entry["responses"] or "{" not in path
    patch = spec["paths"]["/api/v1/billing/subscriptions/{subscription_id}"]["patch"]
    body = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/SubscriptionChangeRequest")
    cancel = spec["paths"]["/api/v1/billing/subscriptions/{subscription_id}/cancel"]["post"]
    schema = spec["components"]["schemas"]["SubscriptionCancelRequest"]
    assert cancel["requestBody"]["required"] is True
    assert schema["properties"]["reason"]["enum"] == [
        "too_expensive",
        "missing_features",
        "switching_provider",
        "not_using",
        "other",
    ]


def test_list_and_get_show_prices_period_and_what_may_change(reader, ss):
    listed = reader.get("/subscriptions")
    assert listed.status_code == 200
    data = listed.get_json()["data"]
    assert [s["id"] for s in data] == [ss.uid]
    one = reader.get(f"/subscriptions/{ss.uid}").get_json()
    SubscriptionResponse.model_validate(one["data"])
    sub = one["data"]
    assert sub == data[0]
    assert sub["status"] == "active" and sub["current_period_start"] == ANCHOR.isoformat()
    assert sub["renews_on"] > TODAY.isoformat() and sub["ends_on"] is None
    base, seats, calls = sub["items"]
    assert (base["price_name"], base["period_amount_minor"]) == ("Base", 3000)
    assert (seats["quantity"], seats["unit_amount"], seats["period_amount_minor"]) == (
        "3",
        "10",
        3000,
    )
    assert calls["usage_kind"] == "metered" and calls["quantity"] is None
    assert calls["quantity_changeable"] is False and calls["switchable_prices"] == []
    assert seats["quantity_changeable"] is True
    # Only the price marked self-serve is offered (not the cheaper one the operator hid).
    assert [p["id"] for p in seats["switchable_prices"]] == [str(ss.seat_pro.public_id)]
    assert sub["period_total_minor"] == 6000
    assert sub["actions"] == {"change": True, "cancel": True, "resume": False}
    assert one["meta"]["api_version"] == "v1"


def test_preview_is_the_periods_invoice_with_the_change_and_writes_nothing(api, ss, world):
    answer = api.post(
        f"/subscriptions/{ss.uid}/preview",
        json={"price_id": str(ss.seat.public_id), "quantity": "5"},
    )
    assert answer.status_code == 200, answer.get_json()
    data = SubscriptionPreviewResponse.model_validate(answer.get_json()["data"])
    assert data.effective_on == TODAY and data.invoice is not None
    nets = [line.net_amount_minor for line in data.invoice.lines]
    assert nets[:2] == [3000, 5000]  # the period's end terms; then the ten days' correction
    assert data.difference_minor == data.invoice.totals.amount_due_minor - (
        data.current_amount_due_minor
    )
    assert data.difference_minor > 0
    assert counts(world.a.tenant.id) == (0, 0)


def test_change_quantity_once_then_the_same_again_changes_nothing(api, ss, world, session):
    body = {"price_id": str(ss.seat.public_id), "quantity": "5"}
    first = api.call("PATCH", f"/subscriptions/{ss.uid}", json=body)
    assert first.status_code == 200, first.get_json()
    seats = first.get_json()["data"]["items"][1]
    assert seats["quantity"] == "5"
    change = first.get_json()["data"]["changes"][0]
    assert (change["effective_on"], change["old_quantity"], change["new_quantity"]) == (
        TODAY.isoformat(),
        "3",
        "5",
    )
    again = api.call("PATCH", f"/subscriptions/{ss.uid}", json={**body, "quantity": 5})
    assert again.status_code == 200
    assert counts(world.a.tenant.id) == (1, 1)
    entry = session.scalars(
        sa.select(AuditLogEntry).where(AuditLogEntry.action == "subscription.change")
    ).one()
    assert entry.actor_label.startswith("api-token:") and entry.actor_token_id is not None


def test_switch_to_a_self_serve_price(api, ss, world, session):
    answer = api.call(
        "PATCH",
        f"/subscriptions/{ss.uid}",
        json={"price_id": str(ss.seat.public_id), "new_price_id": str(ss.seat_pro.public_id)},
    )
    assert answer.status_code == 200, answer.get_json()
    seats = answer.get_json()["data"]["items"][1]
    assert seats["price_id"] == str(ss.seat_pro.public_id) and seats["quantity"] == "3"
    assert seats["period_amount_minor"] == 4350
    assert counts(world.a.tenant.id) == (1, 1)


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"quantity": "0"}, ["body", "quantity"], "quantity_not_positive"),
        ({"quantity": -1}, ["body", "quantity"], "quantity_not_positive"),
        ({"quantity": "abc"}, ["body", "quantity"], None),
        ({"quantity": "-2"}, ["body", "quantity"], None),
        ({"quantity": 5.5}, ["body", "quantity"], None),
        ({"quantity": "1.1234567"}, ["body", "quantity"], "invalid_quantity"),
        ({"quantity": "1" * 30}, ["body", "quantity"], "invalid_quantity"),
        ({"quantity": "3"}, ["body", "quantity"], None),  # PATCH: no change; preview: refused
        ({}, ["body", "quantity"], "nothing_to_change"),
        ({"new_price_id": "{hidden}"}, ["body", "new_price_id"], "unknown_price"),
        ({"new_price_id": "{seat}"}, ["body", "new_price_id"], "unknown_price"),
        ({"new_price_id": "not-a-uuid"}, ["body", "new_price_id"], "unknown_price"),
        ({"price_id": "{api}", "quantity": "2"}, ["body", "quantity"], "quantity_fixed"),
        ({"price_id": "{base}", "quantity": "2"}, ["body", "quantity"], "quantity_fixed"),
        ({"price_id": "{hidden}", "quantity": "2"}, ["body", "price_id"], "unknown_item"),
        ({"quantity": "4", "colour": "red"}, ["body", "colour"], "extra_forbidden"),
    ],
)
@pytest.mark.parametrize("operation", ["preview", "patch"])
def test_bad_changes_are_422_at_the_field_and_write_nothing(
    api, ss, world, session, body, loc, type_, operation
):
    ids = {
        "{seat}": ss.seat,
        "{hidden}": ss.hidden,
        "{api}": ss.shop.api,
        "{base}": ss.shop.flat,
    }
    sent = {"price_id": str(ss.seat.public_id)}
    for key, value in body.items():
        sent[key] = str(ids[value].public_id) if value in ids else value
    if operation == "preview":
        answer = api.post(f"/subscriptions/{ss.uid}/preview", json=sent)
    else:
        answer = api.call("PATCH", f"/subscriptions/{ss.uid}", json=sent)
    if operation == "patch" and body == {"quantity": "3"}:
        assert answer.status_code == 200  # the quantity it has: nothing to do, nothing done
    else:
        assert answer.status_code == 422, answer.get_json()
        detail = answer.get_json()["detail"]
        assert detail[0]["loc"][: len(loc)] == loc
        if type_ is not None:
            assert detail[0]["type"] == type_
        if operation == "preview" and body == {"quantity": "3"}:
            assert detail[0]["type"] == "no_change"
    assert counts(world.a.tenant.id) == (0, 0)
    assert _quantity(session, ss) == 3


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"price_id": "\\u0000"}', b""],
)
def test_bodies_that_are_not_a_change_object_are_422(api, ss, world, body):
    for method, path in (("PATCH", ""), ("POST", "/preview"), ("POST", "/cancel")):
        answer = api.call(
            method,
            f"/subscriptions/{ss.uid}{path}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 422, (method, path, answer.get_json())
        assert answer.get_json()["detail"]
    assert counts(world.a.tenant.id) == (0, 0)


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({}, ["body", "reason"], "missing"),
        ({"reason": "bored"}, ["body", "reason"], "literal_error"),
        ({"reason": "other"}, ["body", "comment"], "comment_required"),
        ({"reason": "other", "comment": "   "}, ["body", "comment"], "comment_required"),
        ({"reason": "not_using", "comment": "x" * 401}, ["body", "comment"], None),
        ({"reason": "not_using", "when": "now"}, ["body", "when"], "extra_forbidden"),
    ],
)
def test_bad_cancellations_are_422_and_write_nothing(api, ss, world, session, body, loc, type_):
    answer = api.post(f"/subscriptions/{ss.uid}/cancel", json=body)
    assert answer.status_code == 422, answer.get_json()
    detail = answer.get_json()["detail"][0]
    assert detail["loc"] == loc
    if type_:
        assert detail["type"] == type_
    session.expire_all()
    assert session.get(Subscription, ss.subscription.id).cancel_at_period_end is False
    assert counts(world.a.tenant.id) == (0, 0)


def test_cancel_at_period_end_then_resume_each_once(api, ss, world, session):
    body = {"reason": "switching_provider", "comment": "Moving to our own servers"}
    first = api.post(f"/subscriptions/{ss.uid}/cancel", json=body)
    assert first.status_code == 200, first.get_json()
    data = first.get_json()["data"]
    assert data["cancel_at_period_end"] is True and data["renews_on"] is None
    assert data["ends_on"] == data["current_period_end"]
    assert data["cancel_reason"] == "switching_provider: Moving to our own servers"
    assert data["actions"] == {"change": True, "cancel": False, "resume": True}
    again = api.post(f"/subscriptions/{ss.uid}/cancel", json={"reason": "too_expensive"})
    assert again.status_code == 200
    assert again.get_json()["data"]["cancel_reason"].startswith("switching_provider")
    assert counts(world.a.tenant.id) == (0, 1)
    resumed = api.post(f"/subscriptions/{ss.uid}/resume")
    assert resumed.status_code == 200
    assert resumed.get_json()["data"]["cancel_at_period_end"] is False
    assert resumed.get_json()["data"]["renews_on"] is not None
    assert api.post(f"/subscriptions/{ss.uid}/resume").status_code == 200
    assert counts(world.a.tenant.id) == (0, 2)
    session.expire_all()
    assert session.get(Subscription, ss.subscription.id).status == SubscriptionStatus.ACTIVE


@pytest.mark.parametrize(
    ("switch", "method", "path", "body"),
    [
        ("quantity", "PATCH", "", {"quantity": "5"}),
        ("quantity", "POST", "/preview", {"quantity": "5"}),
        ("price_switch", "PATCH", "", {"new_price_id": "{pro}"}),
        ("price_switch", "POST", "/preview", {"new_price_id": "{pro}"}),
        ("cancel", "POST", "/cancel", {"reason": "too_expensive"}),
        ("cancel", "POST", "/resume", None),
    ],
)
def test_what_the_settings_forbid_is_403_and_not_offered(
    api, ss, world, session, switch, method, path, body
):
    set_self_service(world.a.tenant, **{switch: False})
    if body is not None:
        body = {"price_id": str(ss.seat.public_id), **body} if path != "/cancel" else body
        if body.get("new_price_id") == "{pro}":
            body["new_price_id"] = str(ss.seat_pro.public_id)
    answer = api.call(method, f"/subscriptions/{ss.uid}{path}", json=body)
    assert answer.status_code == 403, answer.get_json()
    assert answer.get_json()["detail"][0]["type"] == "self_service_off"
    assert counts(world.a.tenant.id) == (0, 0)
    assert _quantity(session, ss) == 3
    shown = api.get(f"/subscriptions/{ss.uid}").get_json()["data"]
    seats = shown["items"][1]
    if switch == "quantity":
        assert seats["quantity_changeable"] is False and seats["switchable_prices"]
    elif switch == "price_switch":
        assert seats["switchable_prices"] == [] and seats["quantity_changeable"] is True
    else:
        assert shown["actions"]["cancel"] is False and shown["actions"]["resume"] is False


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_a_read_only_token_cannot_change(reader, ss, world, method, path, body):
    path, body = _fill(ss, path, body)
    answer = reader.call(method, path, json=body)
    assert answer.status_code == 403
    assert answer.get_json()["detail"][0]["type"] == "insufficient_scope"
    assert counts(world.a.tenant.id) == (0, 0)


@pytest.mark.parametrize(
    ("method", "path", "body"), [*WRITES, ("GET", "/subscriptions/{id}", None)]
)
def test_another_tenants_subscription_is_404_whatever_the_body(api, world, method, path, body):
    theirs = self_serve_subscription(world.b.tenant)
    path, body = _fill(theirs, path, body)
    for sent in (body, None):
        kwargs = {"json": sent} if sent is not None else {"data": "x"}
        answer = api.call(method, path, **kwargs)
        assert answer.status_code == 404, (method, path, answer.get_json())
        assert answer.get_json()["detail"][0]["loc"] == ["path", "subscription_id"]
    assert counts(world.b.tenant.id) == (0, 0)


@pytest.mark.parametrize("bad_id", ["nope", "0", "5f0c6a8e-3d43-4c5b-9a2e-1f7d2b6c9e10"])
def test_unknown_ids_are_404(api, ss, bad_id):
    assert api.get(f"/subscriptions/{bad_id}").status_code == 404
    assert api.post(f"/subscriptions/{bad_id}/resume").status_code == 404


def test_a_canceled_subscription_refuses_changes_at_the_path(api, ss, world, session):
    cancel_subscription(
        session, ss.subscription, OPERATOR, at_period_end=False, reason="operator", on=TODAY
    )
    session.commit()
    before = counts(world.a.tenant.id)
    answer = api.call(
        "PATCH",
        f"/subscriptions/{ss.uid}",
        json={"price_id": str(ss.seat.public_id), "quantity": 4},
    )
    assert answer.status_code == 422
    assert answer.get_json()["detail"][0] == {
        "loc": ["path", "subscription_id"],
        "msg": "The subscription is canceled.",
        "type": "subscription_canceled",
    }
    assert api.post(f"/subscriptions/{ss.uid}/resume").status_code == 422
    cancel = api.post(f"/subscriptions/{ss.uid}/cancel", json={"reason": "not_using"})
    assert cancel.status_code == 422
    shown = api.get(f"/subscriptions/{ss.uid}").get_json()["data"]
    assert shown["status"] == "canceled" and shown["actions"] == {
        "change": False,
        "cancel": False,
        "resume": False,
    }
    assert counts(world.a.tenant.id) == before


def test_dates_are_iso(reader, ss):
    sub = reader.get(f"/subscriptions/{ss.uid}").get_json()["data"]
    for name in ("started_on", "current_period_start", "current_period_end", "renews_on"):
        dt.date.fromisoformat(sub[name])
