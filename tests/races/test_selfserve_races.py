"""One effect per self-service action: 20 concurrent requests from the company's owner at
one subscription, through the subscription page and through the tenant API."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.catalog.models import Subscription, SubscriptionChange, SubscriptionItem
from portal.extensions import db
from portal.tenancy.models import TokenKind
from portal.tenancy.services import create_api_token
from tests.races.conftest import RACERS, fire, session_cookie
from tests.web.selfserve_support import counts, self_serve_subscription

pytestmark = pytest.mark.usefixtures("ledger_checked")

API = "/api/v1/billing"


@pytest.fixture
def ss(world):
    return self_serve_subscription(world.a.tenant)


@pytest.fixture
def owner_cookies(client, auth, world) -> dict[str, str]:
    auth.login(world.a.owner.email)
    return session_cookie(client)


@pytest.fixture
def bearer(world) -> dict[str, str]:
    _, secret = create_api_token(
        db.session,
        kind=TokenKind.TENANT,
        tenant=world.a.tenant,
        name="race",
        scopes=["billing:read", "billing:write"],
    )
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def _seats(ss):
    """The seat item's quantity as committed."""
    return db.session.scalars(
        sa.select(SubscriptionItem.quantity).where(SubscriptionItem.price_id == ss.seat.id)
    ).one()


def test_quantity_changed_once_from_the_page(app, world, ss, owner_cookies):
    url = f"/subscription/{ss.uid}/change?item={ss.seat.public_id}"
    answers = fire(
        app,
        lambda client, _: client.post(url, data={"quantity": "5", "confirmed": "yes"}),
        cookies=owner_cookies,
    )
    statuses = sorted(a.status_code for a in answers)
    # One applies it (303); the others find the quantity already at 5 (inline error, 200).
    assert statuses == [200] * (RACERS - 1) + [303]
    for answer in answers:
        if answer.status_code == 200:
            assert "nothing would change" in answer.get_data(as_text=True)
    assert counts(world.a.tenant.id) == (1, 1)
    assert _seats(ss) == 5


def test_quantity_changed_once_through_the_api(app, world, ss, bearer):
    body = {"price_id": str(ss.seat.public_id), "quantity": "5"}
    url = f"{API}/subscriptions/{ss.uid}"
    answers = fire(app, lambda client, _: client.patch(url, json=body, headers=bearer))
    assert [a.status_code for a in answers] == [200] * RACERS
    assert {a.get_json()["data"]["items"][1]["quantity"] for a in answers} == {"5"}
    assert counts(world.a.tenant.id) == (1, 1)
    assert _seats(ss) == 5


def test_different_quantities_at_once_each_apply_in_turn(app, world, ss, bearer):
    """20 racers asking for 4…23 seats: each is a change, applied one after the other, and
    the recorded changes chain (each one's old quantity is the previous one's new)."""
    url, seat = f"{API}/subscriptions/{ss.uid}", str(ss.seat.public_id)
    answers = fire(
        app,
        lambda client, i: client.patch(
            url, json={"price_id": seat, "quantity": str(4 + i)}, headers=bearer
        ),
    )
    assert [a.status_code for a in answers] == [200] * RACERS
    changes = db.session.scalars(
        sa.select(SubscriptionChange).order_by(SubscriptionChange.id)
    ).all()
    assert len(changes) == RACERS
    assert changes[0].old_quantity == 3
    for before, after in zip(changes, changes[1:], strict=False):
        assert after.old_quantity == before.new_quantity
    assert _seats(ss) == changes[-1].new_quantity


def test_cancel_at_period_end_once_from_the_page(app, world, ss, owner_cookies):
    url = f"/subscription/{ss.uid}/cancel"
    answers = fire(
        app,
        lambda client, i: client.post(url, data={"reason": "too_expensive", "comment": f"#{i}"}),
        cookies=owner_cookies,
    )
    assert [a.status_code for a in answers] == [303] * RACERS
    assert counts(world.a.tenant.id) == (0, 1)
    subscription = db.session.get(Subscription, ss.subscription.id)
    assert subscription.cancel_at_period_end is True
    assert subscription.cancel_reason.startswith("too_expensive: #")


def test_cancel_at_period_end_once_through_the_api(app, world, ss, bearer):
    url = f"{API}/subscriptions/{ss.uid}/cancel"
    answers = fire(
        app, lambda client, _: client.post(url, json={"reason": "not_using"}, headers=bearer)
    )
    assert [a.status_code for a in answers] == [200] * RACERS
    assert all(a.get_json()["data"]["cancel_at_period_end"] for a in answers)
    assert counts(world.a.tenant.id) == (0, 1)


def test_resume_once_through_the_api(app, world, ss, bearer, client):
    first = client.post(
        f"{API}/subscriptions/{ss.uid}/cancel", json={"reason": "not_using"}, headers=bearer
    )
    assert first.status_code == 200
    url = f"{API}/subscriptions/{ss.uid}/resume"
    answers = fire(app, lambda client, _: client.post(url, headers=bearer))
    assert [a.status_code for a in answers] == [200] * RACERS
    assert counts(world.a.tenant.id) == (0, 2)  # the cancellation and one resume
    assert db.session.get(Subscription, ss.subscription.id).cancel_at_period_end is False
