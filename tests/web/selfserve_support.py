"""A subscription of tenant A for the self-service tests: flat base, seats, metered calls.

The period is anchored ten days before today, so a change made today always has ten days
on the old terms, whatever the date the suite runs on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from portal.catalog.models import Price, Subscription, SubscriptionChange
from portal.catalog.settings import company_settings
from portal.catalog.subscriptions import NewItem, create_subscription
from portal.extensions import db
from portal.ops.audit import Actor
from portal.ops.models import AuditLogEntry
from tests.setup.subs_support import Shop

TODAY = dt.date.today()
#: The billing anchor: ten days before today (periods are monthly from it).
ANCHOR = TODAY - dt.timedelta(days=10)
OPERATOR = Actor(label="ops@seller.example")


@dataclass
class SelfServe:
    shop: Shop
    subscription: Subscription
    seat: Price  # 10.00 per seat, 3 seats
    seat_pro: Price  # 14.50 per seat, self-serve
    hidden: Price  # 9.00 per seat, not self-serve

    @property
    def uid(self) -> str:
        return str(self.subscription.public_id)


def self_serve_subscription(tenant) -> SelfServe:
    """Tenant A subscribed to base (30.00 flat), 3 seats (10.00) and API calls; committed."""
    shop = Shop(tenant.seller)
    shop.seat_pro.self_serve = True
    hidden = shop.price("seat-cheap", shop.seat.model, unit_amount=Decimal("9.00"))
    subscription = create_subscription(
        db.session,
        tenant,
        OPERATOR,
        items=[
            NewItem(shop.flat, Decimal(1)),
            NewItem(shop.seat, Decimal(3)),
            NewItem(shop.api),
        ],
        start=ANCHOR,
    )
    db.session.commit()
    return SelfServe(shop, subscription, shop.seat, shop.seat_pro, hidden)


def set_self_service(tenant, **switches: bool) -> None:
    """Turn self-service switches of the company on or off (committed)."""
    settings = company_settings(db.session, tenant)
    for name, value in switches.items():
        setattr(settings, f"self_service_{name}", value)
    db.session.add(settings)
    db.session.commit()


def counts(tenant_id: int) -> tuple[int, int]:
    """(recorded changes, subscription audit entries) of the tenant."""
    db.session.expire_all()
    changes = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(SubscriptionChange)
        .where(SubscriptionChange.tenant_id == tenant_id)
    )
    audits = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditLogEntry)
        .where(
            AuditLogEntry.tenant_id == tenant_id,
            AuditLogEntry.action.in_(
                ("subscription.change", "subscription.cancel", "subscription.resume")
            ),
        )
    )
    return int(changes or 0), int(audits or 0)
