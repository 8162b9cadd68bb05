"""Self-service: what a company's own users may change on their subscriptions, and doing it.

The company's billing settings say what is allowed (quantity changes, switching to prices
the operator marked ``self_serve``, cancelling at period end and resuming). Every change
goes through the operator's services in :mod:`portal.catalog.subscriptions`, which lock the
subscription and re-check it; here the request is checked against the settings first, and
a request that would change nothing (the quantity it has, a cancellation already pending)
is recognised under the same lock and writes nothing, so a repeated or concurrent request
has one effect.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import (
    Plan,
    Price,
    PriceModel,
    Subscription,
    SubscriptionChange,
    SubscriptionItem,
    SubscriptionStatus,
    UsageKind,
)
from portal.catalog.settings import company_settings
from portal.catalog.subscriptions import (
    ItemChange,
    PreviewInvoice,
    SubscriptionRefused,
    cancel_subscription,
    change_item,
    current_period,
    parse_quantity,
    pending_end,
    preview,
    resume_subscription,
)
from portal.db import lock, parse_public_id
from portal.domain.money import Money
from portal.domain.pricing import amount
from portal.invoices.generation import price_spec
from portal.ops.audit import N_, Actor
from portal.tenancy.models import Tenant

#: Why a company cancels: the codes the page and the API offer, in their order.
CANCEL_REASONS = (
    "too_expensive",
    "missing_features",
    "switching_provider",
    "not_using",
    "other",
)
#: Longest free text with a cancellation reason (code + ": " + text fits the column).
COMMENT_LENGTH = 400


class SelfServiceForbidden(SubscriptionRefused):
    """The company's settings do not let its users do this themselves (pages and API: 403)."""

    def __init__(self, action: str, field: str | None = None):
        messages = {
            "quantity": N_("Quantities are changed by your provider, not here."),
            "price": N_("Prices are switched by your provider, not here."),
            "cancel": N_("Cancellations are handled by your provider, not here."),
        }
        super().__init__("self_service_off", messages[action], field)
        #: Which switch is off: ``quantity``, ``price`` or ``cancel``.
        self.action = action


@dataclass(frozen=True)
class SelfService:
    """What the company's owners and billing admins may do themselves."""

    quantity: bool = True
    price_switch: bool = True
    cancel: bool = True


def self_service(session: Session, tenant: Tenant) -> SelfService:
    """The company's self-service switches (all on until the operator turns one off)."""
    settings = company_settings(session, tenant)
    return SelfService(
        quantity=settings.self_service_quantity is not False,
        price_switch=settings.self_service_price_switch is not False,
        cancel=settings.self_service_cancel is not False,
    )


# -- what is offered ---------------------------------------------------------------------------


def quantity_changeable(item: SubscriptionItem) -> bool:
    """Whether the item's quantity means something to change: licensed, and not a flat
    price (which bills the same whatever the quantity)."""
    price = item.price
    return price.usage_kind == UsageKind.LICENSED and price.model != PriceModel.FLAT


def switchable_prices(
    session: Session, subscription: Subscription, item: SubscriptionItem
) -> list[Price]:
    """Prices the item may switch to: marked self-serve by the operator, current (not
    archived or replaced), licensed, in the subscription's currency and interval, and on
    no item of the subscription yet. None for a metered item."""
    if item.price.usage_kind != UsageKind.LICENSED:
        return []
    tenant = session.get_one(Tenant, subscription.tenant_id)
    taken = [other.price_id for other in subscription.items]
    return list(
        session.scalars(
            sa.select(Price)
            .join(Plan, Plan.id == Price.plan_id)
            .where(
                Plan.seller_id == tenant.seller_id,
                Plan.archived_at.is_(None),
                Price.self_serve.is_(True),
                Price.is_active.is_(True),
                Price.archived_at.is_(None),
                Price.usage_kind == UsageKind.LICENSED,
                Price.currency == subscription.currency,
                Price.interval == subscription.interval,
                Price.interval_count == subscription.interval_count,
                Price.id.not_in(taken),
            )
            .order_by(Plan.name, Price.nickname, Price.id)
        )
    )


@dataclass(frozen=True)
class ItemOptions:
    """One item and what its company may change on it."""

    item: SubscriptionItem
    quantity: bool
    prices: list[Price]


@dataclass(frozen=True)
class Options:
    """What the company may do with one subscription now."""

    items: list[ItemOptions]
    cancel: bool
    resume: bool

    @property
    def change(self) -> bool:
        """Whether any item can be changed."""
        return any(option.quantity or option.prices for option in self.items)


def options(
    session: Session, subscription: Subscription, allowed: SelfService, today: dt.date
) -> Options:
    """The actions the settings allow and the subscription's state admits."""
    is_open = subscription.status != SubscriptionStatus.CANCELED
    ends = ends_on(subscription, today)
    items = [
        ItemOptions(
            item,
            quantity=is_open and allowed.quantity and quantity_changeable(item),
            prices=switchable_prices(session, subscription, item)
            if is_open and allowed.price_switch
            else [],
        )
        for item in subscription.items
    ]
    return Options(
        items,
        cancel=is_open and allowed.cancel and ends is None,
        resume=is_open and allowed.cancel and ends is not None,
    )


def period_amount(item: SubscriptionItem) -> Money | None:
    """What a licensed item bills per period, net, at its quantity (None: billed by usage)."""
    if item.price.usage_kind != UsageKind.LICENSED:
        return None
    return amount(price_spec(item.price), item.quantity)


def ends_on(subscription: Subscription, today: dt.date) -> dt.date | None:
    """The first day without the subscription when a cancellation at period end is pending
    (and still ahead), else None."""
    end = pending_end(subscription)
    return end if end is not None and end > today else None


def shown_period(subscription: Subscription, today: dt.date) -> tuple[dt.date, dt.date]:
    """The current period as the pages show it: first and last day (inclusive)."""
    start, end = current_period(subscription, today)
    return start, end - dt.timedelta(days=1)


def renews_on(subscription: Subscription, today: dt.date) -> dt.date | None:
    """The day the next period starts (and is billed from), or None when none follows."""
    if subscription.status == SubscriptionStatus.CANCELED or ends_on(subscription, today):
        return None
    return current_period(subscription, today)[1]


def period_changes(
    session: Session, subscription: Subscription, today: dt.date
) -> list[SubscriptionChange]:
    """The changes recorded for the current period (its invoice prorates them), in the
    order they take effect; those after ``today`` are still to come."""
    start, end = current_period(subscription, today)
    item_ids = [item.id for item in subscription.items]
    if not item_ids:
        return []
    return list(
        session.scalars(
            sa.select(SubscriptionChange)
            .where(
                SubscriptionChange.tenant_id == subscription.tenant_id,
                SubscriptionChange.subscription_item_id.in_(item_ids),
                SubscriptionChange.effective_on >= start,
                SubscriptionChange.effective_on < end,
            )
            .order_by(SubscriptionChange.effective_on, SubscriptionChange.id)
        )
    )


@dataclass(frozen=True)
class SubscriptionNotice:
    """What the overview says about a subscription: its end, and this period's changes."""

    subscription: Subscription
    last_day: dt.date | None  # the last day of a subscription that ends at period end
    changes: list[SubscriptionChange]


def subscription_notices(
    session: Session, tenant: Tenant, today: dt.date
) -> list[SubscriptionNotice]:
    """The company's open subscriptions that end at period end or changed this period."""
    notices = []
    for subscription in session.scalars(
        sa.select(Subscription)
        .where(
            Subscription.tenant_id == tenant.id,
            Subscription.status != SubscriptionStatus.CANCELED,
        )
        .order_by(Subscription.started_on.desc(), Subscription.id.desc())
    ):
        end = ends_on(subscription, today)
        changes = period_changes(session, subscription, today)
        if end is not None or changes:
            last_day = end - dt.timedelta(days=1) if end else None
            notices.append(SubscriptionNotice(subscription, last_day, changes))
    return notices


# -- changing an item --------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantChange:
    """A change the company asked for: a new quantity and/or a new price of one item."""

    item: SubscriptionItem
    quantity: Decimal | None = None
    price: Price | None = None


def parse_change(
    session: Session,
    subscription: Subscription,
    allowed: SelfService,
    *,
    item: Any,
    quantity: Any = None,
    price: Any = None,
) -> TenantChange:
    """The change from request values: ``item`` is the public id of the item's current
    price, ``price`` that of the self-serve price to switch to.

    :raise SelfServiceForbidden: a quantity or a price was sent and the settings forbid it.
    :raise SubscriptionRefused: ``unknown_item``, ``invalid_quantity``,
        ``quantity_not_positive``, ``quantity_fixed``, ``unknown_price``,
        ``nothing_to_change``.
    """
    uid = parse_public_id(item)
    found = next((i for i in subscription.items if uid and i.price.public_id == uid), None)
    if found is None:
        raise SubscriptionRefused("unknown_item", N_("There is no such item."), "item")
    wants_price = price is not None and str(price).strip() != ""
    new_quantity = parse_quantity(quantity)
    if new_quantity is not None and not allowed.quantity:
        raise SelfServiceForbidden("quantity", "quantity")
    if wants_price and not allowed.price_switch:
        raise SelfServiceForbidden("price", "price")
    if new_quantity is not None and not quantity_changeable(found):
        raise SubscriptionRefused(
            "quantity_fixed",
            N_("This item is billed at a fixed amount or by usage: it has no quantity to change."),
            "quantity",
        )
    new_price = None
    if wants_price:
        price_uid = parse_public_id(price)
        offered = switchable_prices(session, subscription, found)
        new_price = next((p for p in offered if p.public_id == price_uid), None)
        if new_price is None:
            raise SubscriptionRefused(
                "unknown_price", N_("Choose one of the prices offered."), "price"
            )
    if new_quantity is None and new_price is None:
        raise SubscriptionRefused(
            "nothing_to_change", N_("Enter a new quantity or choose a new price."), "quantity"
        )
    return TenantChange(found, new_quantity, new_price)


def _no_change(change: TenantChange) -> bool:
    item = change.item
    same_quantity = change.quantity is None or change.quantity == item.quantity
    same_price = change.price is None or change.price.id == item.price_id
    return same_quantity and same_price


def no_change_refusal(change: TenantChange) -> SubscriptionRefused:
    """The refusal of a change that would change nothing (pages show it at the field)."""
    return SubscriptionRefused(
        "no_change",
        N_("This is what the item has already: nothing would change."),
        "price" if change.price is not None and change.quantity is None else "quantity",
    )


@dataclass(frozen=True)
class ChangePreview:
    """The period's invoice with the change, and without it (for the difference)."""

    invoice: PreviewInvoice | None
    current: PreviewInvoice | None

    @property
    def difference_minor(self) -> int:
        """How much more (or, negative, less) the period's invoice comes to."""
        after = self.invoice.totals["amount_due_minor"] if self.invoice else 0
        before = self.current.totals["amount_due_minor"] if self.current else 0
        return after - before


def preview_change(
    session: Session, subscription: Subscription, change: TenantChange, today: dt.date
) -> ChangePreview:
    """The invoice of the current period as the invoice run would issue it with the change
    from ``today`` (drafted by the run's code in a savepoint: nothing is written).

    :raise SubscriptionRefused: ``no_change``, or as :func:`change_item`.
    """
    if _no_change(change):
        raise no_change_refusal(change)
    on = ItemChange(change.item, today, quantity=change.quantity, price=change.price)
    with_change = preview(session, subscription, on, today=today)
    return ChangePreview(with_change, preview(session, subscription, None, today=today))


def apply_change(
    session: Session,
    subscription: Subscription,
    actor: Actor,
    change: TenantChange,
    today: dt.date,
) -> bool:
    """Change the item from ``today``; the period's invoice prorates it. False, and nothing
    written, when the item has that quantity and price already (checked under the lock).

    :raise SubscriptionRefused: as :func:`change_item`.
    """
    lock(session, subscription)
    lock(session, change.item)
    if _no_change(change):
        return False
    quantity = change.quantity if change.quantity != change.item.quantity else None
    price = change.price
    if price is not None and price.id == change.item.price_id:
        price = None
    change_item(
        session,
        subscription,
        actor,
        ItemChange(change.item, today, quantity=quantity, price=price),
        today=today,
    )
    return True


# -- cancelling and resuming -------------------------------------------------------------------


def cancel_reason(reason: Any, comment: Any) -> str:
    """The stored reason: the code, with the free text after a colon when there is one.

    :raise SubscriptionRefused: ``invalid_reason``, ``comment_required`` (for "other"),
        ``comment_too_long``.
    """
    if not isinstance(reason, str) or reason not in CANCEL_REASONS:
        raise SubscriptionRefused("invalid_reason", N_("Choose a reason."), "reason")
    text = comment.replace("\x00", "").strip() if isinstance(comment, str) else ""
    if len(text) > COMMENT_LENGTH:
        raise SubscriptionRefused(
            "comment_too_long", N_("Keep it under 400 characters."), "comment"
        )
    if reason == "other" and not text:
        raise SubscriptionRefused(
            "comment_required", N_("Tell us in a few words why you cancel."), "comment"
        )
    return f"{reason}: {text}" if text else reason


def cancel_at_period_end(
    session: Session,
    subscription: Subscription,
    actor: Actor,
    allowed: SelfService,
    *,
    reason: Any,
    comment: Any,
    today: dt.date,
) -> bool:
    """Cancel at the end of the current period: it is billed, nothing after it. False, and
    nothing written, when that cancellation is pending already (checked under the lock).

    :raise SelfServiceForbidden: the settings do not allow it.
    :raise SubscriptionRefused: as :func:`cancel_reason`; ``subscription_canceled``.
    """
    if not allowed.cancel:
        raise SelfServiceForbidden("cancel")
    text = cancel_reason(reason, comment)
    lock(session, subscription)
    if subscription.status != SubscriptionStatus.CANCELED and ends_on(subscription, today):
        return False
    cancel_subscription(session, subscription, actor, at_period_end=True, reason=text, today=today)
    return True


def resume(
    session: Session,
    subscription: Subscription,
    actor: Actor,
    allowed: SelfService,
    *,
    today: dt.date,
) -> bool:
    """Withdraw a pending cancellation: the subscription renews. False, and nothing
    written, when none is pending (checked under the lock).

    :raise SelfServiceForbidden: the settings do not allow cancelling (nor its undoing).
    :raise SubscriptionRefused: ``subscription_canceled``.
    """
    if not allowed.cancel:
        raise SelfServiceForbidden("cancel")
    lock(session, subscription)
    if subscription.status == SubscriptionStatus.CANCELED:
        raise SubscriptionRefused("subscription_canceled", N_("The subscription is canceled."))
    if pending_end(subscription) is None:
        return False
    resume_subscription(session, subscription, actor, today=today)
    return True
