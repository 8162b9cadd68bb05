"""Console operations of a company's subscriptions, one-off charges and usage events.

Declared on the console surface (``views.api``): same envelope, errors, idempotency per
X-Request-id and OpenAPI. Every change goes through the services the admin pages call
(catalog/subscriptions.py, invoices/charges.py, usage/services.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Response

from portal.api.console.common import company_or_404, token_actor
from portal.api.console.envelope import (
    action,
    console_envelope,
    one,
    whole_collection,
)
from portal.api.console.serializers import coupon_terms
from portal.api.console.subscription_schemas import (
    CancellationAction,
    CancelQuery,
    ChargeAction,
    ChargeCreate,
    CouponApplyIn,
    PreviewAnswer,
    PreviewIn,
    SubscriptionAction,
    SubscriptionAnswer,
    SubscriptionChangeIn,
    SubscriptionCollection,
    SubscriptionCreate,
    SubscriptionPatch,
    UsageBatchAnswer,
    UsageBatchIn,
)
from portal.api.console.views import api
from portal.api.core import ApiError, error_entry
from portal.catalog.coupons import (
    ALREADY_APPLIED,
    add_coupon,
    coupon_by_uid,
    remove_coupon,
    subscription_coupons,
)
from portal.catalog.models import Coupon, Subscription
from portal.catalog.products import CatalogInvalid
from portal.catalog.queries import applied_coupon, seller_coupon
from portal.catalog.subscriptions import (
    ItemChange,
    NewItem,
    PreviewInvoice,
    SubscriptionRefused,
    cancel_subscription,
    change_item,
    company_subscriptions,
    create_subscription,
    find_price,
    find_subscription,
    parse_quantity,
    pending_end,
    preview,
    resume_subscription,
)
from portal.extensions import db
from portal.invoices.charges import ChargeRefused, NewCharge, add_charge
from portal.invoices.models import CreditNote, Invoice
from portal.tenancy.models import Tenant
from portal.usage.services import (
    MAX_BATCH,
    EventResult,
    UsageBatchRefused,
    UsageEvent,
    ingest_usage,
)

TAGS = ["Subscriptions"]
#: Preview totals by their console names (as in the invoice resource's totals).
TOTALS = {
    "lines_total_minor": "linesMinor",
    "allowance_total_minor": "allowancesMinor",
    "charge_total_minor": "chargesMinor",
    "tax_exclusive_minor": "taxExclusiveMinor",
    "tax_minor": "taxMinor",
    "tax_inclusive_minor": "taxInclusiveMinor",
    "amount_due_minor": "amountDueMinor",
}
STATUS = {"trialing": "Trialing", "active": "Active", "past_due": "PastDue", "canceled": "Canceled"}
#: Refusals about the subscription's state, not the request's content: 409.
STATE_CODES = {
    "subscription_canceled",
    "period_invoiced",
    "not_pending_cancellation",
    "company_archived",
}
#: Service field names → where they are in the request.
LOCATIONS = {
    "billing_anchor": ["body", "billingAnchor"],
    "trial_end": ["body", "trialEnd"],
    "items": ["body", "items"],
    "item": ["body", "change", "priceUid"],
    "price": ["body", "change", "newPriceUid"],
    "quantity": ["body", "change", "quantity"],
    "on": ["body", "change", "effectiveDate"],
    "reason": ["query", "reason"],
    "description": ["body", "description"],
    "unit_price": ["body", "unitPrice"],
    "tax_treatment": ["body", "taxTreatment"],
    "timing": ["body", "timing"],
    "vat_exemption_reason": ["body", "vatExemptionReason"],
}
_ITEM_FIELDS = {"price": "priceUid", "quantity": "quantity"}


def _location(field: str | None, *, charge: bool = False) -> list[str | int]:
    if field is None:
        return ["body"]
    if field.startswith("items."):
        parts = field.split(".")
        loc: list[str | int] = ["body", "items", int(parts[1])]
        if len(parts) > 2:
            loc.append(_ITEM_FIELDS.get(parts[2], parts[2]))
        return loc
    if charge and field == "quantity":
        return ["body", "quantity"]
    return list(LOCATIONS.get(field, ["body", field]))


def subscription_refused(exc: SubscriptionRefused) -> ApiError:
    """A refused subscription request: 409 for the subscription's state, else 400 at the
    field at fault."""
    status = 409 if exc.code in STATE_CODES else 400
    return ApiError(status, [error_entry(_location(exc.field), exc.message, exc.code)])


def charge_refused(exc: ChargeRefused) -> ApiError:
    """A refused one-off charge: 400 at the field at fault (409 for an archived company)."""
    status = 409 if exc.code == "company_archived" else 400
    return ApiError(status, [error_entry(_location(exc.field, charge=True), exc.message, exc.code)])


#: Coupon refusals about the subscription's state (the rest concern the coupon sent).
COUPON_STATE = {"subscription": "subscription_canceled"}


def coupon_refused(exc: CatalogInvalid) -> ApiError:
    """A coupon the subscription cannot take: 409 for a canceled subscription or a coupon
    it has already, 400 for a coupon it can never take (archived, another seller's, another
    currency)."""
    entries = []
    status = 400
    for field, message in exc.errors.items():
        if field in COUPON_STATE:
            status = 409
            entries.append(error_entry(["path", "subscriptionUid"], message, COUPON_STATE[field]))
        else:
            code = "coupon_applied" if message == ALREADY_APPLIED else "invalid_value"
            status = 409 if code == "coupon_applied" else status
            entries.append(error_entry(["body", "couponUid"], message, code))
    return ApiError(status, entries)


RAISES: dict[type[Exception], Any] = {
    SubscriptionRefused: subscription_refused,
    ChargeRefused: charge_refused,
    CatalogInvalid: coupon_refused,
}


def _subscription(tenant: Tenant, subscription_uid: str) -> Subscription:
    subscription = find_subscription(db.session, tenant, subscription_uid)
    if subscription is None:
        raise ApiError(
            404,
            [error_entry(["path", "subscriptionUid"], "Subscription not found.", "not_found")],
        )
    return subscription


def _decimal(value: Any) -> str | None:
    return None if value is None else f"{Decimal(value).normalize():f}"


def subscription_resource(subscription: Subscription, tenant: Tenant) -> dict[str, Any]:
    """The console's view of a subscription."""
    return {
        "instanceUid": str(subscription.public_id),
        "companyUid": str(tenant.public_id),
        "status": STATUS[subscription.status.value],
        "currency": subscription.currency,
        "interval": subscription.interval.value,
        "intervalCount": subscription.interval_count,
        "billingAnchor": subscription.started_on,
        "currentPeriodStart": subscription.current_period_start,
        "currentPeriodEnd": subscription.current_period_end.fromordinal(
            subscription.current_period_end.toordinal() - 1
        ),
        "trialEnd": subscription.trial_end,
        "cancelAtPeriodEnd": subscription.cancel_at_period_end,
        "endsOn": pending_end(subscription)
        or (subscription.canceled_at.date() if subscription.canceled_at else None),
        "canceledAt": subscription.canceled_at,
        "cancelReason": subscription.cancel_reason,
        "items": [
            {
                "priceUid": str(item.price.public_id),
                "priceName": item.price.nickname,
                "usageKind": item.price.usage_kind.value,
                "metric": item.price.metric,
                "quantity": _decimal(item.quantity)
                if item.price.usage_kind.value == "licensed"
                else None,
            }
            for item in subscription.items
        ],
        "coupons": [
            {
                **coupon_terms(coupon),
                "periodsUsed": applied.periods_used,
                "appliedAt": applied.applied_at,
                "removedAt": applied.removed_at,
                "applies": applies,
            }
            for applied, coupon, applies in subscription_coupons(db.session, subscription)
        ],
    }


def preview_resource(invoice: PreviewInvoice | None) -> dict[str, Any] | None:
    """A previewed invoice: lines, totals and allowances as the run would issue them."""
    if invoice is None:
        return None
    return {
        "currency": invoice.currency,
        "periodStart": invoice.period_start,
        "periodEnd": invoice.period_end,
        "lines": [
            {
                "kind": line.kind.value,
                "description": line.description,
                "quantity": _decimal(line.quantity),
                "unitPrice": _decimal(line.unit_price),
                "netAmountMinor": line.net_amount_minor,
                "vatCategory": line.vat_category,
                "vatRate": _decimal(line.vat_rate),
            }
            for line in invoice.lines
        ],
        "totals": {TOTALS[name]: value for name, value in invoice.totals.items()},
        "allowances": [
            {
                "reason": a["reason"],
                "amountMinor": a["amount_minor"],
                "isCharge": a["is_charge"],
                "vatCategory": a["vat_category"],
                "vatRate": _decimal(a["vat_rate"]),
            }
            for a in invoice.allowances
        ],
    }


# --- subscriptions ---------------------------------------------------------------------------


@api.operation(
    "GET",
    "/<companyUid>/billing/subscriptions",
    "Get Subscriptions of Company",
    response=SubscriptionCollection,
    tags=TAGS,
    errors=(404,),
)
def get_subscriptions(companyUid: str):
    """The company's subscriptions, newest first, with items, periods, trial and pending
    cancellation."""
    tenant = company_or_404(companyUid)
    rows = [subscription_resource(s, tenant) for s in company_subscriptions(db.session, tenant)]
    return whole_collection(rows)


@api.operation(
    "POST",
    "/<companyUid>/billing/subscriptions",
    "Create Subscription",
    body=SubscriptionCreate,
    response=SubscriptionAction,
    status=201,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def post_subscription(companyUid: str, body: SubscriptionCreate):
    """Subscribe the company to one or more prices of its seller, all in its currency and
    of one interval: licensed ones with a quantity above 0, metered ones without. 400 for an
    unknown price, another currency, a bad quantity, a trial end or billing anchor before
    the start; 409 for an archived company. Nothing is written then."""
    tenant = company_or_404(companyUid)
    items = [
        NewItem(
            find_price(db.session, tenant, item.priceUid, field=f"items.{index}.price"),
            parse_quantity(item.quantity, field=f"items.{index}.quantity"),
        )
        for index, item in enumerate(body.items)
    ]
    subscription = create_subscription(
        db.session,
        tenant,
        token_actor(),
        items=items,
        start=body.startDate,
        billing_anchor=body.billingAnchor,
        trial_end=body.trialEnd,
    )
    response = action(subscription_resource(subscription, tenant))
    response.status_code = 201
    return response


@api.operation(
    "GET",
    "/<companyUid>/billing/subscriptions/<subscriptionUid>",
    "Get Subscription",
    response=SubscriptionAnswer,
    tags=TAGS,
    errors=(404,),
)
def get_subscription(companyUid: str, subscriptionUid: str):
    """One subscription of the company (another company's is 404)."""
    tenant = company_or_404(companyUid)
    return one(subscription_resource(_subscription(tenant, subscriptionUid), tenant), [])


def _change(tenant: Tenant, subscription: Subscription, change: SubscriptionChangeIn):
    price = find_price(db.session, tenant, change.priceUid, field="item")
    item = next((i for i in subscription.items if i.price_id == price.id), None)
    if item is None:
        raise SubscriptionRefused(
            "unknown_item", "The subscription has no item of this price.", "item"
        )
    new_price = (
        find_price(db.session, tenant, change.newPriceUid, field="price")
        if change.newPriceUid
        else None
    )
    quantity = parse_quantity(change.quantity, field="quantity")
    if quantity is None and new_price is None:
        raise SubscriptionRefused(
            "nothing_to_change", "Send a new quantity or a new price.", "quantity"
        )
    return ItemChange(item, change.effectiveDate, quantity=quantity, price=new_price)


@api.operation(
    "PATCH",
    "/<companyUid>/billing/subscriptions/<subscriptionUid>",
    "Modify Subscription",
    body=SubscriptionPatch,
    response=SubscriptionAction,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def patch_subscription(companyUid: str, subscriptionUid: str, body: SubscriptionPatch):
    """Change one item's quantity and/or price from a day of the current period (the
    period's invoice prorates it; 400 outside the period, 409 once the period is invoiced),
    or resume a pending cancellation with ``{"cancelAtPeriodEnd": false}``."""
    tenant = company_or_404(companyUid)
    subscription = _subscription(tenant, subscriptionUid)
    if (body.change is None) == (body.cancelAtPeriodEnd is None):
        raise ApiError(
            400,
            [
                error_entry(
                    ["body"], "Send either change or cancelAtPeriodEnd: false.", "invalid_body"
                )
            ],
        )
    if body.change is not None:
        change_item(
            db.session, subscription, token_actor(), _change(tenant, subscription, body.change)
        )
    else:
        resume_subscription(db.session, subscription, token_actor())
    return action(subscription_resource(subscription, tenant))


@api.operation(
    "DELETE",
    "/<companyUid>/billing/subscriptions/<subscriptionUid>",
    "Cancel Subscription",
    query=CancelQuery,
    response=CancellationAction,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def delete_subscription(companyUid: str, subscriptionUid: str, query: CancelQuery):
    """Cancel: ``at=periodEnd`` bills the current period and nothing after (resumable with
    PATCH); ``at=now`` ends the period early on ``effectiveDate`` (default today): its final
    invoice is issued, or, when the period is invoiced already, a credit note returns the
    unused share of its licensed lines."""
    tenant = company_or_404(companyUid)
    subscription = _subscription(tenant, subscriptionUid)
    result = cancel_subscription(
        db.session,
        subscription,
        token_actor(),
        at_period_end=query.at == "periodEnd",
        reason=query.reason,
        on=query.effectiveDate,
    )
    invoice: Invoice | None = result.invoice
    note: CreditNote | None = result.credit_note
    return action(
        {
            "subscription": subscription_resource(subscription, tenant),
            "finalInvoiceUid": str(invoice.public_id) if invoice else None,
            "creditNoteUid": str(note.public_id) if note else None,
        }
    )


@api.operation(
    "POST",
    "/<companyUid>/billing/subscriptions/<subscriptionUid>/preview",
    "Preview Subscription Change",
    body=PreviewIn,
    response=PreviewAnswer,
    scope="read",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def preview_subscription(companyUid: str, subscriptionUid: str, body: PreviewIn):
    """The invoice of the current period as the invoice run would issue it with the change
    (computed by the run's own code; nothing is written). ``data`` is null when the period
    bills nothing. The change is checked as PATCH checks it."""
    tenant = company_or_404(companyUid)
    subscription = _subscription(tenant, subscriptionUid)
    change = _change(tenant, subscription, body.change) if body.change else None
    return console_envelope(preview_resource(preview(db.session, subscription, change)))


# --- coupons on a subscription ---------------------------------------------------------------


def _coupon_sent(tenant: Tenant, body: CouponApplyIn) -> Coupon:
    if (body.couponUid is None) == (body.code is None):
        raise ApiError(
            400, [error_entry(["body"], "Send either couponUid or code.", "invalid_body")]
        )
    where: list[str | int]
    if body.couponUid is not None:
        coupon = coupon_by_uid(db.session, body.couponUid)
        where = ["body", "couponUid"]
    else:
        coupon = seller_coupon(db.session, tenant.seller_id, body.code or "")
        where = ["body", "code"]
    if coupon is None or coupon.seller_id != tenant.seller_id:
        raise ApiError(400, [error_entry(where, "Unknown coupon.", "unknown_coupon")])
    return coupon


@api.operation(
    "POST",
    "/<companyUid>/billing/subscriptions/<subscriptionUid>/coupons",
    "Apply Coupon to Subscription",
    body=CouponApplyIn,
    response=SubscriptionAction,
    status=201,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def post_subscription_coupon(companyUid: str, subscriptionUid: str, body: CouponApplyIn):
    """Put one of the seller's coupons on the subscription, by uid or code: it discounts
    the invoices planned from now on, as an allowance (BG-20), for its duration. 400 for an
    unknown, archived or another currency's coupon; 409 when the company has the coupon
    already or the subscription is canceled."""
    tenant = company_or_404(companyUid)
    subscription = _subscription(tenant, subscriptionUid)
    add_coupon(db.session, subscription, _coupon_sent(tenant, body), token_actor())
    response = action(subscription_resource(subscription, tenant))
    response.status_code = 201
    return response


@api.operation(
    "DELETE",
    "/<companyUid>/billing/subscriptions/<subscriptionUid>/coupons/<couponUid>",
    "Remove Coupon from Subscription",
    response=SubscriptionAction,
    scope="write",
    tags=TAGS,
    errors=(404,),
    raises=RAISES,
)
def delete_subscription_coupon(companyUid: str, subscriptionUid: str, couponUid: str):
    """Take the coupon off: invoices planned afterwards carry no allowance of it; issued
    ones keep theirs. Removing it again changes nothing; a coupon never on the subscription
    is 404."""
    tenant = company_or_404(companyUid)
    subscription = _subscription(tenant, subscriptionUid)
    coupon = coupon_by_uid(db.session, couponUid)
    applied = applied_coupon(db.session, subscription, coupon) if coupon else None
    if applied is None:
        raise ApiError(
            404,
            [
                error_entry(
                    ["path", "couponUid"], "The subscription has no such coupon.", "not_found"
                )
            ],
        )
    remove_coupon(db.session, applied, token_actor())
    return action(subscription_resource(subscription, tenant))


# --- one-off charges -------------------------------------------------------------------------


def charge_resource(charge: Any, tenant: Tenant) -> dict[str, Any]:
    """The console's view of a one-off charge."""
    invoice = db.session.get(Invoice, charge.invoice_id) if charge.invoice_id else None
    return {
        "instanceUid": str(charge.public_id),
        "companyUid": str(tenant.public_id),
        "description": charge.description,
        "quantity": _decimal(charge.quantity),
        "unitPrice": _decimal(charge.unit_price),
        "currency": charge.currency,
        "taxTreatment": charge.tax_treatment.value,
        "timing": "now" if charge.timing.value == "now" else "nextInvoice",
        "invoiceUid": str(invoice.public_id) if invoice else None,
        "createdAt": charge.created_at,
    }


@api.operation(
    "POST",
    "/<companyUid>/billing/charges",
    "Create One-off Charge",
    body=ChargeCreate,
    response=ChargeAction,
    status=201,
    scope="write",
    tags=["One-off charges"],
    errors=(404, 409),
    raises=RAISES,
)
def post_charge(companyUid: str, body: ChargeCreate):
    """A one-off charge in the company's currency: quantity above 0, unit price 0 or more.
    ``nextInvoice`` puts it on the company's next periodic invoice (billed once); ``now``
    issues it at once as an invoice of its own (``invoiceUid``)."""
    tenant = company_or_404(companyUid)
    charge = add_charge(
        db.session,
        tenant,
        token_actor(),
        NewCharge(
            description=body.description,
            quantity=body.quantity,
            unit_price=body.unitPrice,
            tax_treatment=body.taxTreatment,
            timing="now" if body.timing == "now" else "next_invoice",
            vat_exemption_reason=body.vatExemptionReason,
        ),
    )
    response = action(charge_resource(charge, tenant))
    response.status_code = 201
    return response


# --- usage -----------------------------------------------------------------------------------


def _result(result: EventResult) -> dict[str, Any]:
    return {
        "index": result.index,
        "idempotencyKey": result.idempotency_key,
        "status": result.status,
        "code": result.http_status,
        "usageUid": str(result.public_id) if result.public_id else None,
        "reason": result.code,
        "message": result.message,
        "remedy": result.remedy,
        "invoiceNumber": result.invoice_number,
    }


def _batch(results: list[EventResult]) -> dict[str, Any]:
    return {
        "created": sum(1 for r in results if r.status == "created"),
        "duplicates": sum(1 for r in results if r.status == "duplicate"),
        "results": [_result(r) for r in results],
    }


@api.operation(
    "POST",
    "/<companyUid>/billing/usage",
    "Post Usage Events",
    body=UsageBatchIn,
    response=UsageBatchAnswer,
    scope="write",
    tags=["Usage"],
    errors=(404, 409),
)
def post_usage(companyUid: str, body: UsageBatchIn) -> Response:
    """Record 1 to 1,000 usage events, each once per idempotency key; all or nothing.

    A key sent again with the same body is accepted once (``duplicate``). If an event is
    refused — its key was used with another body (409), or its time falls in a period
    already invoiced (409, with the remedy: bill it in the next period or correct that
    invoice by a credit note) — nothing is written: the answer carries every event's result
    (the others ``not_written``) and one error per refused event. More than 1,000 events is
    a 422 and nothing is written.
    """
    tenant = company_or_404(companyUid)
    if len(body.events) > MAX_BATCH:
        return console_envelope(
            None,
            422,
            errors=[
                {
                    "code": 422,
                    "type": "batch_too_large",
                    "message": f"A batch holds at most {MAX_BATCH} events, not "
                    f"{len(body.events)}; nothing was written.",
                    "location": "body/events",
                }
            ],
        )
    events = [
        UsageEvent(e.idempotencyKey, e.metric, e.quantity, e.timestamp, dict(e.properties))
        for e in body.events
    ]
    try:
        results = ingest_usage(db.session, tenant, events)
    except UsageBatchRefused as exc:
        refused = [r for r in exc.results if r.status != "not_written"]
        status = 409 if any(r.http_status == 409 for r in refused) else 400
        # One error per event not written, in event order: the refused ones with their
        # reason (and remedy), the others as not written because of them.
        return console_envelope(
            None,
            status,
            errors=[
                {
                    "code": status,
                    "type": r.code or r.status,
                    "message": f"{r.message} {r.remedy}" if r.remedy else (r.message or ""),
                    "location": f"body/events/{r.index}",
                }
                for r in exc.results
                if not r.accepted
            ],
        )
    return action(_batch(results))
