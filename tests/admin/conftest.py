"""Fixtures of the admin tests: an acting admin and current-month subscriptions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from portal.catalog.models import Plan, Price, PriceModel, Subscription, SubscriptionItem
from portal.db import utcnow
from portal.ops.audit import Actor
from portal.usage.models import Quota, UsageRecord


@pytest.fixture
def actor(world) -> Actor:
    return Actor(label=world.admin.email, user_id=world.admin.id, ip_address="127.0.0.1")


def subscribe_all(session, tenants, *, used: Decimal = Decimal(1200)) -> None:
    """One plan (49.00 flat + metered API calls) for every tenant this month, with usage of
    ``used`` against a 1000-call quota; committed."""
    plan = Plan(seller_id=tenants[0].seller_id, code="admin-plan", name="Plan")
    session.add(plan)
    session.flush()
    flat = Price(
        plan_id=plan.id,
        code="flat",
        nickname="Cloud Platform",
        currency="EUR",
        model=PriceModel.FLAT,
        unit_amount=Decimal("49.00"),
    )
    metered = Price(
        plan_id=plan.id,
        code="api",
        nickname="API calls",
        currency="EUR",
        model=PriceModel.PER_UNIT,
        unit_amount=Decimal("0.01"),
        metric="api_calls",
        usage_kind="metered",
    )
    session.add_all([flat, metered])
    session.flush()
    start = utcnow().date().replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    for tenant in tenants:
        session.add(
            Subscription(
                tenant_id=tenant.id,
                currency="EUR",
                started_on=start,
                current_period_start=start,
                current_period_end=end,
                items=[
                    SubscriptionItem(tenant_id=tenant.id, price=flat, quantity=Decimal(1)),
                    SubscriptionItem(tenant_id=tenant.id, price=metered, quantity=Decimal(0)),
                ],
            )
        )
        session.add(Quota(tenant_id=tenant.id, metric="api_calls", limit=Decimal(1000)))
        session.add(
            UsageRecord(
                tenant_id=tenant.id,
                metric="api_calls",
                quantity=used,
                occurred_at=dt.datetime.combine(start, dt.time(1), tzinfo=dt.UTC),
                idempotency_key=f"admin-{tenant.id}",
            )
        )
    session.commit()


@pytest.fixture
def subscribed(world, session):
    """Both tenants subscribed this month (usage 1200 of a 1000 quota)."""
    subscribe_all(session, [world.a.tenant, world.b.tenant])
    return world
