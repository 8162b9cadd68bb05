"""A small catalog and tenant builder for hand-computed billing scenarios."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from portal.catalog.models import (
    CompanyBillingSettings,
    Plan,
    Price,
    PriceModel,
    PriceTier,
    Subscription,
    SubscriptionItem,
    UsageKind,
)
from portal.extensions import db
from portal.usage.models import UsageRecord
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory

D = Decimal
OCTOBER = (dt.date(2026, 10, 1), dt.date(2026, 11, 1))  # 31 days


class Catalog:
    """Prices of one seller, in EUR and JPY."""

    def __init__(self, seller):
        self.seller = seller
        self.plan = Plan(seller_id=seller.id, code="p", name="Plan")
        db.session.add(self.plan)
        db.session.flush()

    def price(
        self,
        code: str,
        model: PriceModel,
        currency: str = "EUR",
        *,
        unit_amount=None,
        tiers=(),
        package_size=None,
        metric=None,
        nickname=None,
    ) -> Price:
        price = Price(
            plan_id=self.plan.id,
            code=code,
            nickname=nickname or code,
            currency=currency,
            model=model,
            unit_amount=unit_amount,
            package_size=package_size,
            metric=metric,
            usage_kind=UsageKind.METERED if metric else UsageKind.LICENSED,
            tiers=[
                PriceTier(position=i, up_to=up, unit_amount=amount)
                for i, (up, amount) in enumerate(tiers)
            ],
        )
        db.session.add(price)
        db.session.flush()
        return price


def subscribe(
    tenant, items, *, start=OCTOBER[0], end=OCTOBER[1], trial_end=None, currency="EUR"
) -> Subscription:
    """An active monthly subscription with (price, quantity) items."""
    subscription = Subscription(
        tenant_id=tenant.id,
        currency=currency,
        started_on=start,
        current_period_start=start,
        current_period_end=end,
        trial_end=trial_end,
        items=[
            SubscriptionItem(tenant_id=tenant.id, price=price, quantity=D(quantity))
            for price, quantity in items
        ],
    )
    db.session.add(subscription)
    db.session.flush()
    return subscription


def record_usage(tenant, metric: str, quantity, day: dt.date, key: str) -> None:
    db.session.add(
        UsageRecord(
            tenant_id=tenant.id,
            metric=metric,
            quantity=D(quantity),
            occurred_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
            idempotency_key=key,
        )
    )


@pytest.fixture
def seller(app):
    return SellerFactory(country="DE", vat_id="DE811907980")


@pytest.fixture
def catalog(seller):
    return Catalog(seller)


@pytest.fixture
def make_tenant(seller):
    def make(country="DE", vat_id=None, currency="EUR", discount=None, **profile):
        tenant = TenantFactory(seller=seller, currency=currency)
        BillingProfileFactory(
            tenant=tenant, country=country, vat_id=vat_id, currency=currency, **profile
        )
        if discount is not None:
            db.session.add(
                CompanyBillingSettings(tenant_id=tenant.id, discount_percent=D(discount))
            )
        db.session.flush()
        return tenant

    return make
