"""Helpers of the catalog and coupon tests: an actor, a seller's company and a subscription."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from portal.catalog.models import Price, Subscription, SubscriptionItem
from portal.extensions import db
from portal.ops.audit import Actor
from portal.ops.models import AuditLogEntry
from portal.usage.models import UsageRecord
from tests.factories.tenancy import BillingProfileFactory, TenantFactory

D = Decimal
OCTOBER = (dt.date(2026, 10, 1), dt.date(2026, 11, 1))
ACTOR = Actor(label="ops@example.com", ip_address="127.0.0.1")


def company(seller, *, country="DE", currency="EUR", **profile):
    """A company of ``seller`` with a billing profile (a German consumer: 19 % VAT)."""
    tenant = TenantFactory(seller=seller, currency=currency)
    BillingProfileFactory(tenant=tenant, country=country, currency=currency, **profile)
    db.session.flush()
    return tenant


def subscribe(tenant, items: list[tuple[Price, int | str]], *, currency="EUR") -> Subscription:
    """A monthly subscription from 1 October 2026 with (price, quantity) items."""
    start, end = OCTOBER
    subscription = Subscription(
        tenant_id=tenant.id,
        currency=currency,
        started_on=start,
        current_period_start=start,
        current_period_end=end,
        items=[
            SubscriptionItem(tenant_id=tenant.id, price=price, quantity=D(quantity))
            for price, quantity in items
        ],
    )
    db.session.add(subscription)
    db.session.flush()
    return subscription


def use(tenant, metric: str, quantity, key: str, day=dt.date(2026, 10, 15)) -> None:
    db.session.add(
        UsageRecord(
            tenant_id=tenant.id,
            metric=metric,
            quantity=D(quantity),
            occurred_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
            idempotency_key=key,
        )
    )
    db.session.flush()


def audit_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditLogEntry.action).order_by(AuditLogEntry.id)))


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
