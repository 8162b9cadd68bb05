"""The tenant's subscription page: what it shows, the changes owners and billing admins make
(preview, then confirm), bad input at the field with nothing written, viewers read-only,
another tenant's subscription 404, and the company's self-service switches."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.catalog.models import Subscription, SubscriptionItem
from portal.ops.models import AuditLogEntry
from portal.tenancy.roles import Role
from tests.web.selfserve_support import (
    TODAY,
    counts,
    self_serve_subscription,
    set_self_service,
)


@pytest.fixture
def ss(world):
    return self_serve_subscription(world.a.tenant)


def _change_url(ss, price=None) -> str:
    return f"/subscription/{ss.uid}/change?item={(price or ss.seat).public_id}"


def _seats(session, ss):
    session.expire_all()
    return session.scalars(
        sa.select(SubscriptionItem).where(
            SubscriptionItem.subscription_id == ss.subscription.id,
            SubscriptionItem.price_id.in_([ss.seat.id, ss.seat_pro.id]),
        )
    ).one()


def _field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field__error" id="{name}-error">([^<]*)</p>', html)
    assert found, f"no inline error at {name}"
    return found.group(1)


@pytest.mark.parametrize("role", list(Role))
def test_everyone_sees_the_subscription_managers_see_the_actions(client, auth, world, ss, role):
    auth.login(world.a.user(role).email)
    page = client.get("/subscription")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/subscription"' in html and 'aria-current="page"' in html
    for text in ("Cloud · Base", "Cloud · Seat", "Cloud · Api", "€30.00", "€10.00 per unit"):
        assert text in html
    assert "Licensed prices per period, net: <strong>€60.00</strong>" in html
    assert "Renews on" in html
    managing = role != Role.VIEWER
    assert (f'id="change-{ss.seat.public_id}"' in html) is managing
    assert (f'id="cancel-{ss.uid}"' in html) is managing
    # The metered item has nothing to change.
    assert f'id="change-{ss.shop.api.public_id}"' not in html


def test_htmx_gets_the_list_fragment(client, auth, world, ss):
    auth.login(world.a.owner.email)
    fragment = client.get("/subscription", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert 'id="subscriptions"' in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]


def test_without_a_subscription_the_page_says_so(client, auth, world):
    auth.login(world.a.owner.email)
    assert "You have no subscription yet" in client.get("/subscription").get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.OWNER, Role.BILLING_ADMIN])
def test_raise_seats_preview_then_confirm(client, auth, world, ss, session, role):
    auth.login(world.a.user(role).email)
    form = client.get(_change_url(ss)).get_data(as_text=True)
    assert 'name="quantity"' in form and str(ss.seat_pro.public_id) in form
    assert str(ss.hidden.public_id) not in form  # not marked self-serve: not offered
    previewed = client.post(_change_url(ss), data={"quantity": "5"})
    assert previewed.status_code == 200
    html = previewed.get_data(as_text=True)
    assert 'id="preview-lines"' in html and 'id="confirm-button"' in html
    assert "Seat: 3 × used until" in html and "€50.00" in html
    assert counts(world.a.tenant.id) == (0, 0)  # the preview wrote nothing
    assert _seats(session, ss).quantity == 3
    done = client.post(_change_url(ss), data={"quantity": "5", "confirmed": "yes"})
    assert done.status_code == 303
    assert _seats(session, ss).quantity == 5
    assert counts(world.a.tenant.id) == (1, 1)
    entry = session.scalars(
        sa.select(AuditLogEntry).where(AuditLogEntry.action == "subscription.change")
    ).one()
    user = world.a.user(role)
    assert (entry.actor_user_id, entry.actor_label) == (user.id, user.email)
    assert entry.data["after"]["change_on"] == TODAY.isoformat()
    listing = client.get("/subscription").get_data(as_text=True)
    assert "Changes in this period" in listing and "quantity 3 → 5" in listing


def test_switch_to_a_self_serve_price(client, auth, world, ss, session):
    auth.login(world.a.owner.email)
    data = {"quantity": "3", "price": str(ss.seat_pro.public_id)}
    previewed = client.post(_change_url(ss), data=data).get_data(as_text=True)
    assert "Seat-Pro" in previewed and 'id="confirm-button"' in previewed
    assert client.post(_change_url(ss), data={**data, "confirmed": "yes"}).status_code == 303
    seats = _seats(session, ss)
    assert (seats.price_id, seats.quantity) == (ss.seat_pro.id, 3)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"quantity": "0"}, "quantity", "greater than zero"),
        ({"quantity": "-3"}, "quantity", "greater than zero"),
        ({"quantity": "abc"}, "quantity", "as a number"),
        ({"quantity": "1e999999"}, "quantity", "too large"),
        ({"quantity": "2.1234567"}, "quantity", "six decimal places"),
        ({"quantity": "3"}, "quantity", "nothing would change"),
        ({"quantity": ""}, "quantity", "Enter a new quantity"),
        ({"quantity": "4", "price": "{hidden}"}, "price", "prices offered"),
        ({"quantity": "4", "price": "not-a-price"}, "price", "prices offered"),
    ],
)
@pytest.mark.parametrize("confirmed", [False, True])
def test_bad_input_is_an_inline_error_and_writes_nothing(
    client, auth, world, ss, session, data, field, message, confirmed
):
    auth.login(world.a.owner.email)
    if data.get("price") == "{hidden}":
        data = {**data, "price": str(ss.hidden.public_id)}
    if confirmed:
        data = {**data, "confirmed": "yes"}
    answer = client.post(_change_url(ss), data=data)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert message in _field_error(html, field)
    assert 'aria-invalid="true"' in html and 'id="confirm-button"' not in html
    assert counts(world.a.tenant.id) == (0, 0)
    assert _seats(session, ss).quantity == 3


def test_an_item_without_a_quantity_to_change_is_refused(client, auth, world, ss):
    auth.login(world.a.owner.email)
    # The metered item: no quantity, no self-serve price of its kind.
    assert client.get(_change_url(ss, ss.shop.api)).status_code == 403
    # The flat base can switch price but has no quantity: posting one is a field error.
    answer = client.post(_change_url(ss, ss.shop.flat), data={"quantity": "2"})
    assert answer.status_code == 200
    assert 'role="alert">This item is billed at a fixed amount' in answer.get_data(as_text=True)
    assert client.get(f"/subscription/{ss.uid}/change?item=nope").status_code == 404
    assert counts(world.a.tenant.id) == (0, 0)


def test_cancel_at_period_end_with_a_reason_then_resume(client, auth, world, ss, session):
    auth.login(world.a.owner.email)
    form = client.get(f"/subscription/{ss.uid}/cancel").get_data(as_text=True)
    for label in ("Too expensive", "Missing features", "Switching to another provider"):
        assert label in form
    done = client.post(
        f"/subscription/{ss.uid}/cancel",
        data={"reason": "missing_features", "comment": "No SSO"},
    )
    assert done.status_code == 303
    session.expire_all()
    subscription = session.get(Subscription, ss.subscription.id)
    assert subscription.cancel_at_period_end is True
    assert subscription.cancel_reason == "missing_features: No SSO"
    listing = client.get("/subscription").get_data(as_text=True)
    assert "Your subscription ends on" in listing and "Missing features – No SSO" in listing
    assert f'id="resume-{ss.uid}"' in listing and f'id="cancel-{ss.uid}"' not in listing
    # Cancelling again changes nothing (the page does not offer it; a post is a no-op).
    client.post(f"/subscription/{ss.uid}/cancel", data={"reason": "too_expensive"})
    assert counts(world.a.tenant.id) == (0, 1)
    assert client.post(f"/subscription/{ss.uid}/resume").status_code == 303
    session.expire_all()
    assert session.get(Subscription, ss.subscription.id).cancel_at_period_end is False
    entries = session.scalars(
        sa.select(AuditLogEntry)
        .where(AuditLogEntry.action.in_(("subscription.cancel", "subscription.resume")))
        .order_by(AuditLogEntry.id)
    ).all()
    assert [e.actor_user_id for e in entries] == [world.a.owner.id] * 2
    assert "Renews on" in client.get("/subscription").get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "reason", "Choose a reason"),
        ({"reason": "bored"}, "reason", "Choose a reason"),
        ({"reason": "other"}, "comment", "few words"),
        ({"reason": "other", "comment": "  "}, "comment", "few words"),
        ({"reason": "not_using", "comment": "x" * 401}, "comment", "400 characters"),
    ],
)
def test_bad_cancellation_is_an_inline_error_and_writes_nothing(
    client, auth, world, ss, session, data, field, message
):
    auth.login(world.a.owner.email)
    answer = client.post(f"/subscription/{ss.uid}/cancel", data=data)
    assert answer.status_code == 200
    assert message in _field_error(answer.get_data(as_text=True), field)
    session.expire_all()
    assert session.get(Subscription, ss.subscription.id).cancel_at_period_end is False
    assert counts(world.a.tenant.id) == (0, 0)


def test_a_nul_in_a_field_is_refused_before_anything_is_written(client, auth, world, ss):
    auth.login(world.a.owner.email)
    answer = client.post(
        f"/subscription/{ss.uid}/cancel", data={"reason": "other", "comment": "a\x00b"}
    )
    assert answer.status_code == 422
    assert counts(world.a.tenant.id) == (0, 0)


def _writes(ss):
    return [
        ("GET", _change_url(ss), None),
        ("POST", _change_url(ss), {"quantity": "5", "confirmed": "yes"}),
        ("GET", f"/subscription/{ss.uid}/cancel", None),
        ("POST", f"/subscription/{ss.uid}/cancel", {"reason": "too_expensive"}),
        ("POST", f"/subscription/{ss.uid}/resume", {}),
    ]


def test_viewers_see_but_cannot_change(client, auth, world, ss, session):
    auth.login(world.a.viewer.email)
    for method, url, data in _writes(ss):
        assert client.open(url, method=method, data=data).status_code == 403, (method, url)
    assert counts(world.a.tenant.id) == (0, 0)
    assert _seats(session, ss).quantity == 3


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
def test_another_tenants_subscription_is_404(client, auth, world, role, session):
    theirs = self_serve_subscription(world.b.tenant)
    auth.login(world.a.user(role).email)
    for method, url, data in _writes(theirs):
        status = client.open(url, method=method, data=data).status_code
        assert status == (404 if role == Role.OWNER else 403), (method, url)
    listing = client.get("/subscription").get_data(as_text=True)
    assert theirs.uid not in listing
    assert counts(world.b.tenant.id) == (0, 0)


@pytest.mark.parametrize(
    ("switch", "method", "url", "data"),
    [
        ("quantity", "POST", "change", {"quantity": "5"}),
        ("quantity", "POST", "change", {"quantity": "5", "confirmed": "yes"}),
        ("price_switch", "POST", "change", {"price": "{pro}"}),
        ("price_switch", "POST", "change", {"price": "{pro}", "confirmed": "yes"}),
        ("cancel", "GET", "cancel", None),
        ("cancel", "POST", "cancel", {"reason": "too_expensive"}),
        ("cancel", "POST", "resume", {}),
    ],
)
def test_what_the_settings_forbid_is_not_offered_and_403(
    client, auth, world, ss, session, switch, method, url, data
):
    set_self_service(world.a.tenant, **{switch: False})
    auth.login(world.a.owner.email)
    if data and data.get("price") == "{pro}":
        data = {**data, "price": str(ss.seat_pro.public_id)}
    target = _change_url(ss) if url == "change" else f"/subscription/{ss.uid}/{url}"
    assert client.open(target, method=method, data=data).status_code == 403
    assert counts(world.a.tenant.id) == (0, 0)
    listing = client.get("/subscription").get_data(as_text=True)
    form = client.get(_change_url(ss))
    if switch == "cancel":
        assert f'id="cancel-{ss.uid}"' not in listing
        assert form.status_code == 200
    elif switch == "quantity":
        assert 'name="quantity"' not in form.get_data(as_text=True)
        assert 'name="price"' in form.get_data(as_text=True)
    else:
        assert 'name="price"' not in form.get_data(as_text=True)
        assert 'name="quantity"' in form.get_data(as_text=True)


def test_all_changes_off_hides_every_change_link(client, auth, world, ss):
    set_self_service(world.a.tenant, quantity=False, price_switch=False, cancel=False)
    auth.login(world.a.owner.email)
    listing = client.get("/subscription").get_data(as_text=True)
    assert 'id="change-' not in listing and 'id="cancel-' not in listing
    assert client.get(_change_url(ss)).status_code == 403
    assert client.post(_change_url(ss), data={}).status_code == 403


def test_admin_turns_a_switch_off_on_the_company_form(client, auth, world, ss, session):
    auth.login(world.admin.email)
    page = client.get(f"/admin/companies/{world.a.tenant.public_id}").get_data(as_text=True)
    for name in ("self_service_quantity", "self_service_price_switch", "self_service_cancel"):
        assert f'id="{name}" name="{name}" checked' in page
    form = {
        "billing_day": "1",
        "payment_terms_days": "",
        "discount_percent": "0",
        "auto_finalize": "on",
        "auto_collect": "on",
        "self_service_quantity": "on",
        "self_service_price_switch": "on",
    }
    saved = client.post(f"/admin/companies/{world.a.tenant.public_id}/settings", data=form)
    assert saved.status_code == 303
    auth.logout()
    auth.login(world.a.owner.email)
    listing = client.get("/subscription").get_data(as_text=True)
    assert f'id="cancel-{ss.uid}"' not in listing and f'id="change-{ss.seat.public_id}"' in listing


def test_overview_shows_the_periods_changes_and_the_end(client, auth, world, ss):
    auth.login(world.a.owner.email)
    assert "Your subscription ends on" not in client.get("/").get_data(as_text=True)
    client.post(_change_url(ss), data={"quantity": "5", "confirmed": "yes"})
    overview = client.get("/").get_data(as_text=True)
    assert "Changes in this period" in overview and "quantity 3 → 5" in overview
    client.post(f"/subscription/{ss.uid}/cancel", data={"reason": "not_using"})
    overview = client.get("/").get_data(as_text=True)
    assert "Your subscription ends on" in overview
    assert f'href="/subscription#s-{ss.uid}"' in overview
