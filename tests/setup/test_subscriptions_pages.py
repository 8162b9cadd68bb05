"""Admin pages of subscriptions and one-off charges: forms, inline errors, preview, confirm."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.models import OneOffCharge, Subscription, SubscriptionChange
from portal.catalog.subscriptions import NewItem, create_subscription
from portal.extensions import db
from portal.ops.models import AuditLogEntry
from tests.setup.subs_support import ACTOR, D, Shop


@pytest.fixture
def admin(client, auth, world):
    auth.login(world.admin.email)
    return client


@pytest.fixture
def shop(world) -> Shop:
    shop = Shop(world.a.tenant.seller)
    db.session.commit()
    return shop


def _subscribed(world, shop) -> Subscription:
    subscription = create_subscription(
        db.session,
        world.a.tenant,
        ACTOR,
        items=[NewItem(shop.seat, D(3)), NewItem(shop.api)],
        start=dt.date.today().replace(day=1),
    )
    db.session.commit()
    return subscription


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_company_page_reaches_subscriptions_and_charges(admin, world, shop):
    tenant = world.a.tenant
    body = admin.get(f"/admin/companies/{tenant.public_id}").get_data(as_text=True)
    assert f"/admin/companies/{tenant.public_id}/subscriptions" in body
    assert 'id="charge-form"' in body


def test_new_subscription_form_errors_inline_then_creates(admin, world, shop):
    tenant = world.a.tenant
    url = f"/admin/companies/{tenant.public_id}/subscriptions/new"
    form = admin.get(url).get_data(as_text=True)
    assert "Seat" in form and 'name="items.0.price"' in form
    answer = admin.post(
        url,
        data={
            "items.0.price": str(shop.seat.public_id),
            "items.0.quantity": "0",
            "start": dt.date.today().isoformat(),
        },
    )
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert "The quantity must be greater than zero." in body and 'aria-invalid="true"' in body
    assert _count(Subscription) == 0
    answer = admin.post(
        url,
        data={
            "items.0.price": str(shop.seat.public_id),
            "items.0.quantity": "4",
            "start": "not a date",
        },
    )
    assert "Enter a date as YYYY-MM-DD." in answer.get_data(as_text=True)
    answer = admin.post(
        url,
        data={
            "items.0.price": str(shop.seat.public_id),
            "items.0.quantity": "4",
            "items.1.price": str(shop.api.public_id),
            "start": dt.date.today().isoformat(),
        },
    )
    assert answer.status_code == 303
    subscription = db.session.scalars(sa.select(Subscription)).one()
    assert [i.quantity for i in subscription.items] == [4, 0]
    listing = admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Seat" in listing and "Api" in listing


def test_change_shows_the_preview_before_it_is_applied(admin, world, shop):
    subscription = _subscribed(world, shop)
    tenant = world.a.tenant
    url = f"/admin/companies/{tenant.public_id}/subscriptions/{subscription.public_id}/change"
    assert admin.get(url).status_code == 200
    data = {
        "item": str(subscription.items[0].id),
        "quantity": "5",
        "on": dt.date.today().isoformat(),
    }
    answer = admin.post(url, data=data)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'id="preview-lines"' in body
    assert 'id="confirm-button"' in body
    assert _count(SubscriptionChange) == 0
    answer = admin.post(url, data={**data, "on": "2000-01-01"})
    assert "A change takes effect on a day within the current period." in answer.get_data(
        as_text=True
    )
    answer = admin.post(url, data={**data, "confirmed": "yes"})
    assert answer.status_code == 303
    assert _count(SubscriptionChange) == 1
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).items[0].quantity == 5


def test_cancel_and_resume_with_confirmation(admin, world, shop):
    subscription = _subscribed(world, shop)
    tenant = world.a.tenant
    base = f"/admin/companies/{tenant.public_id}/subscriptions/{subscription.public_id}"
    page = admin.get(f"{base}/cancel").get_data(as_text=True)
    assert 'name="reason"' in page and 'value="now"' in page
    answer = admin.post(f"{base}/cancel", data={"when": "period_end", "reason": ""})
    assert answer.status_code == 200
    assert "Say why the subscription is canceled." in answer.get_data(as_text=True)
    answer = admin.post(f"{base}/cancel", data={"when": "period_end", "reason": "budget"})
    assert answer.status_code == 303
    listing = admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert "budget" in listing and "Resume" in listing
    assert admin.get(f"{base}/resume").status_code == 200
    assert admin.post(f"{base}/resume").status_code == 303
    db.session.expire_all()
    assert not db.session.get(Subscription, subscription.id).cancel_at_period_end
    actions = list(db.session.scalars(sa.select(AuditLogEntry.action)))
    assert actions[-2:] == ["subscription.cancel", "subscription.resume"]


def test_another_company_s_subscription_is_404(admin, world, shop):
    subscription = _subscribed(world, shop)
    other = world.b.tenant
    url = f"/admin/companies/{other.public_id}/subscriptions/{subscription.public_id}/change"
    assert admin.get(url).status_code == 404
    assert (
        admin.get(f"/admin/companies/{other.public_id}/subscriptions/nope/cancel").status_code
        == 404
    )


def test_charge_form_errors_inline_then_adds(admin, world, shop):
    tenant = world.a.tenant
    url = f"/admin/companies/{tenant.public_id}/charges"
    answer = admin.post(
        url,
        data={
            "description": "Setup",
            "quantity": "0",
            "unit_price": "5",
            "tax_treatment": "services",
            "timing": "next_invoice",
        },
    )
    assert answer.status_code == 200
    assert "The quantity must be greater than zero." in answer.get_data(as_text=True)
    assert _count(OneOffCharge) == 0
    answer = admin.post(
        url,
        data={
            "description": "Setup",
            "quantity": "1",
            "unit_price": "5,50",
            "tax_treatment": "services",
            "timing": "now",
        },
    )
    assert answer.status_code == 303
    charge = db.session.scalars(sa.select(OneOffCharge)).one()
    assert charge.unit_price == D("5.5") and charge.invoice_id is not None
    assert "Setup" in admin.get(url).get_data(as_text=True)
