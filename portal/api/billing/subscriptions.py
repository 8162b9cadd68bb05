"""The tenant API's subscription operations: read, preview a change, change, cancel at
period end, resume — what the subscription page does, for machines.

Declared on the tenant surface (``views.api``): its token scopes, ``{data, meta}`` envelope
and ``{detail}`` errors. Changes go through :mod:`portal.catalog.self_service`, as on the
page: the company's self-service settings decide what is allowed (403 ``self_service_off``
otherwise), refusals are 422 at the field, another tenant's subscription is 404, and a
request that would change nothing (the same quantity again, a second cancellation) answers
200 with the subscription unchanged, so retries are safe.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import g, request

from portal.api.billing.schemas import ApiResponse
from portal.api.billing.subscription_schemas import (
    SubscriptionCancelRequest,
    SubscriptionChangeRequest,
    SubscriptionPreviewResponse,
    SubscriptionResponse,
)
from portal.api.billing.views import api
from portal.api.core import ApiError, error_entry, not_found, parse_body, request_id
from portal.catalog.models import Price, Subscription, SubscriptionStatus, UsageKind
from portal.catalog.self_service import (
    SelfServiceForbidden,
    apply_change,
    cancel_at_period_end,
    ends_on,
    options,
    parse_change,
    period_amount,
    period_changes,
    preview_change,
    renews_on,
    resume,
    self_service,
    shown_period,
)
from portal.catalog.subscriptions import (
    PreviewInvoice,
    SubscriptionRefused,
    company_subscriptions,
    find_subscription,
)
from portal.extensions import db
from portal.ops.audit import Actor
from portal.tenancy.models import Tenant

TAGS = ["Subscriptions"]
#: Where a refusal's field is in the request.
LOCATIONS: dict[str, list[str | int]] = {
    "item": ["body", "price_id"],
    "quantity": ["body", "quantity"],
    "price": ["body", "new_price_id"],
    "reason": ["body", "reason"],
    "comment": ["body", "comment"],
}


def refused(exc: SubscriptionRefused) -> ApiError:
    """A refusal: 403 when the company's settings forbid the action, else 422 at the field
    (at the subscription for its state, e.g. canceled or invoiced already)."""
    loc = LOCATIONS.get(exc.field or "", ["path", "subscription_id"])
    status = 403 if isinstance(exc, SelfServiceForbidden) else 422
    return ApiError(status, [error_entry(loc, exc.message, exc.code)])


RAISES = {SubscriptionRefused: refused}


def _actor() -> Actor:
    """The tenant's API token as the actor of the audit entry."""
    token = g.api_token
    return Actor(
        label=f"api-token:{token.prefix}",
        token_id=token.id,
        ip_address=request.remote_addr,
        request_id=request_id(),
    )


def _tenant() -> Tenant:
    return g.api_token.tenant


def _subscription(subscription_id: str) -> Subscription:
    found = find_subscription(db.session, _tenant(), subscription_id)
    if found is None:
        raise not_found("subscription_id", "Subscription")
    return found


def _decimal(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.normalize()


def _price(price: Price) -> dict[str, Any]:
    return {
        "id": str(price.public_id),
        "product_name": price.plan.name,
        "price_name": price.nickname,
        "model": price.model.value,
        "unit_amount": _decimal(price.unit_amount),
        "currency": price.currency,
    }


def subscription_answer(subscription: Subscription, today: dt.date) -> SubscriptionResponse:
    """The subscription as the page shows it, with what the company may do now."""
    allowed = options(db.session, subscription, self_service(db.session, _tenant()), today)
    start, last = shown_period(subscription, today)
    end = ends_on(subscription, today)
    amounts = [a for a in map(period_amount, subscription.items) if a is not None]
    items = []
    for option in allowed.items:
        item = option.item
        licensed = item.price.usage_kind == UsageKind.LICENSED
        per_period = period_amount(item)
        items.append(
            {
                **{k: v for k, v in _price(item.price).items() if k not in ("id", "currency")},
                "price_id": str(item.price.public_id),
                "usage_kind": item.price.usage_kind.value,
                "metric": item.price.metric,
                "quantity": _decimal(item.quantity) if licensed else None,
                "period_amount_minor": per_period.minor if per_period is not None else None,
                "quantity_changeable": option.quantity,
                "switchable_prices": [_price(p) for p in option.prices],
            }
        )
    return SubscriptionResponse.model_validate(
        {
            "id": str(subscription.public_id),
            "status": subscription.status.value,
            "currency": subscription.currency,
            "interval": subscription.interval.value,
            "interval_count": subscription.interval_count,
            "started_on": subscription.started_on,
            "current_period_start": start,
            "current_period_end": last,
            "renews_on": renews_on(subscription, today),
            "trial_end": subscription.trial_end,
            "cancel_at_period_end": subscription.cancel_at_period_end
            and subscription.status != SubscriptionStatus.CANCELED,
            "ends_on": end - dt.timedelta(days=1) if end else None,
            "cancel_reason": subscription.cancel_reason,
            "canceled_at": subscription.canceled_at,
            "period_total_minor": sum(a.minor for a in amounts) if amounts else None,
            "items": items,
            "changes": [
                {
                    "effective_on": change.effective_on,
                    "scheduled": change.effective_on > today,
                    "old_price_id": str(change.old_price.public_id),
                    "new_price_id": str(change.new_price.public_id),
                    "old_quantity": _decimal(change.old_quantity),
                    "new_quantity": _decimal(change.new_quantity),
                }
                for change in period_changes(db.session, subscription, today)
            ],
            "actions": {
                "change": allowed.change,
                "cancel": allowed.cancel,
                "resume": allowed.resume,
            },
        }
    )


def _invoice(invoice: PreviewInvoice | None) -> dict[str, Any] | None:
    if invoice is None:
        return None
    return {
        "currency": invoice.currency,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "lines": [
            {
                "kind": line.kind.value,
                "description": line.description,
                "quantity": _decimal(line.quantity),
                "unit_price": _decimal(line.unit_price),
                "net_amount_minor": line.net_amount_minor,
                "vat_category": line.vat_category,
                "vat_rate": _decimal(line.vat_rate),
            }
            for line in invoice.lines
        ],
        "totals": dict(invoice.totals),
        "allowances": [
            {**allowance, "vat_rate": _decimal(allowance["vat_rate"])}
            for allowance in invoice.allowances
        ],
    }


def _change(subscription: Subscription, body: SubscriptionChangeRequest):
    return parse_change(
        db.session,
        subscription,
        self_service(db.session, _tenant()),
        item=body.price_id,
        quantity=body.quantity,
        price=body.new_price_id,
    )


@api.operation(
    "GET",
    "/subscriptions",
    "List Subscriptions",
    response=ApiResponse[list[SubscriptionResponse]],
    tags=TAGS,
)
def list_subscriptions_op():
    """The tenant's subscriptions, newest first: prices, quantities, current period,
    renewal, trial, the changes of this period, a pending cancellation, and what the
    company may change itself."""
    today = dt.date.today()
    return [subscription_answer(s, today) for s in company_subscriptions(db.session, _tenant())]


@api.operation(
    "GET",
    "/subscriptions/<subscription_id>",
    "Get Subscription",
    response=ApiResponse[SubscriptionResponse],
    tags=TAGS,
    errors=(404,),
)
def get_subscription_op(subscription_id: str):
    """One subscription of the tenant (another tenant's is 404)."""
    return subscription_answer(_subscription(subscription_id), dt.date.today())


@api.operation(
    "POST",
    "/subscriptions/<subscription_id>/preview",
    "Preview Subscription Change",
    response=ApiResponse[SubscriptionPreviewResponse],
    scope="write",
    tags=TAGS,
    errors=(404,),
    raises=RAISES,
)
def preview_subscription_op(subscription_id: str):
    """The current period's invoice as the invoice run would issue it with the change from
    today (the same code drafts it; nothing is written), and the difference it makes.
    422 for a change the subscription cannot take, 403 when the company's settings do not
    let it make the change itself."""
    subscription = _subscription(subscription_id)
    body = parse_body(SubscriptionChangeRequest)
    assert isinstance(body, SubscriptionChangeRequest)
    today = dt.date.today()
    previewed = preview_change(db.session, subscription, _change(subscription, body), today)
    current = previewed.current.totals["amount_due_minor"] if previewed.current else 0
    return SubscriptionPreviewResponse.model_validate(
        {
            "subscription_id": subscription_id,
            "effective_on": today,
            "invoice": _invoice(previewed.invoice),
            "current_amount_due_minor": current,
            "difference_minor": previewed.difference_minor,
        }
    )


@api.operation(
    "PATCH",
    "/subscriptions/<subscription_id>",
    "Change Subscription",
    response=ApiResponse[SubscriptionResponse],
    scope="write",
    tags=TAGS,
    errors=(404,),
    raises=RAISES,
)
def change_subscription_op(subscription_id: str):
    """Change one item's quantity and/or switch it to a self-serve price, from today; the
    period's invoice prorates it (see the preview). The same change again writes nothing
    and answers the subscription as it is."""
    subscription = _subscription(subscription_id)
    body = parse_body(SubscriptionChangeRequest)
    assert isinstance(body, SubscriptionChangeRequest)
    today = dt.date.today()
    apply_change(db.session, subscription, _actor(), _change(subscription, body), today)
    return subscription_answer(subscription, today)


@api.operation(
    "POST",
    "/subscriptions/<subscription_id>/cancel",
    "Cancel Subscription At Period End",
    response=ApiResponse[SubscriptionResponse],
    scope="write",
    tags=TAGS,
    errors=(404,),
    raises=RAISES,
)
def cancel_subscription_op(subscription_id: str):
    """Cancel at the end of the current period, with a reason (too_expensive,
    missing_features, switching_provider, not_using, other + comment): the period is billed,
    nothing after it. A cancellation already pending stays as it is."""
    subscription = _subscription(subscription_id)
    body = parse_body(SubscriptionCancelRequest)
    assert isinstance(body, SubscriptionCancelRequest)
    today = dt.date.today()
    cancel_at_period_end(
        db.session,
        subscription,
        _actor(),
        self_service(db.session, _tenant()),
        reason=body.reason,
        comment=body.comment,
        today=today,
    )
    return subscription_answer(subscription, today)


@api.operation(
    "POST",
    "/subscriptions/<subscription_id>/resume",
    "Resume Subscription",
    response=ApiResponse[SubscriptionResponse],
    scope="write",
    tags=TAGS,
    errors=(404,),
    raises=RAISES,
)
def resume_subscription_op(subscription_id: str):
    """Withdraw a pending cancellation before the period ends: the subscription renews.
    Without one pending, nothing changes; a canceled subscription is 422."""
    subscription = _subscription(subscription_id)
    today = dt.date.today()
    resume(
        db.session,
        subscription,
        _actor(),
        self_service(db.session, _tenant()),
        today=today,
    )
    return subscription_answer(subscription, today)
