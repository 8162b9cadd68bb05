"""Subscription use cases: mid-period changes of price or quantity."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from portal.catalog.models import (
    Price,
    Subscription,
    SubscriptionChange,
    SubscriptionItem,
    UsageKind,
)
from portal.db import lock


class SubscriptionChangeRefused(ValueError):
    """A change that the subscription cannot take (metered price, other currency, date)."""


def change_subscription_item(
    session: Session,
    item: SubscriptionItem,
    *,
    on: dt.date,
    quantity: Decimal | None = None,
    price: Price | None = None,
) -> SubscriptionChange | None:
    """Change a licensed item's quantity and/or price from ``on`` and record it for proration.

    :raise SubscriptionChangeRefused: for metered prices, another currency, or a day outside
        the current period (checked under the item's lock).
    """
    lock(session, item)
    subscription: Subscription = item.subscription
    new_price = price or item.price
    new_quantity = item.quantity if quantity is None else Decimal(quantity)
    if UsageKind.METERED in (item.price.usage_kind, new_price.usage_kind):
        raise SubscriptionChangeRefused("metered prices follow usage; they are not prorated")
    if new_price.currency != subscription.currency:
        raise SubscriptionChangeRefused(
            f"the subscription bills in {subscription.currency}, not {new_price.currency}"
        )
    if new_quantity < 0:
        raise SubscriptionChangeRefused("quantity cannot be negative")
    if not subscription.current_period_start <= on < subscription.current_period_end:
        raise SubscriptionChangeRefused("changes take effect within the current period")
    if new_price.id == item.price_id and new_quantity == item.quantity:
        return None
    change = SubscriptionChange(
        tenant_id=item.tenant_id,
        subscription_item_id=item.id,
        effective_on=on,
        old_price_id=item.price_id,
        old_quantity=item.quantity,
        new_price_id=new_price.id,
        new_quantity=new_quantity,
    )
    item.price = new_price
    item.quantity = new_quantity
    session.add(change)
    session.flush()
    return change
