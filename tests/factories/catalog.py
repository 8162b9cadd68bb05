"""A current-month subscription with usage and a quota, for page and e2e tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from portal.catalog.models import Plan, Price, PriceModel, Subscription, SubscriptionItem
from portal.db import utcnow
from portal.usage.models import Quota, UsageRecord


def subscribe_this_month(
    session, tenant, *, api_price=Decimal("0.01"), used=Decimal(1200), quota=Decimal(1000)
) -> Subscription:
    """Cloud Platform at 49.00 plus metered API calls, with usage and a quota; committed."""
    plan = Plan(seller_id=tenant.seller_id, code="p", name="Plan")
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
        unit_amount=api_price,
        metric="api_calls",
        usage_kind="metered",
    )
    session.add_all([flat, metered])
    session.flush()
    start = utcnow().date().replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    subscription = Subscription(
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
    session.add(subscription)
    session.add(Quota(tenant_id=tenant.id, metric="api_calls", limit=quota))
    session.add(
        UsageRecord(
            tenant_id=tenant.id,
            metric="api_calls",
            quantity=used,
            occurred_at=dt.datetime.combine(start, dt.time(1), tzinfo=dt.UTC),
            idempotency_key="this-month",
        )
    )
    session.commit()
    return subscription
