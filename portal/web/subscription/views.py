"""The company's own subscription page: what it is subscribed to, and the changes its
settings let owners and billing admins make (quantity, self-serve price, cancel, resume)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.catalog.models import (
    Price,
    PriceModel,
    Subscription,
    SubscriptionItem,
    UsageKind,
)
from portal.catalog.self_service import (
    CANCEL_REASONS,
    ItemOptions,
    SelfService,
    SelfServiceForbidden,
    apply_change,
    cancel_at_period_end,
    ends_on,
    no_change_refusal,
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
    SubscriptionRefused,
    company_subscriptions,
    find_subscription,
)
from portal.domain.money import Money
from portal.extensions import db
from portal.ops.audit import Actor
from portal.web.formatting import date_short, money, number
from portal.web.guards import tenant_view
from portal.web.htmx import render_page

bp = Blueprint("subscription", __name__)

ONE_DAY = dt.timedelta(days=1)

#: The cancellation reasons as the page shows them.
REASON_LABELS = {
    "too_expensive": _l("Too expensive"),
    "missing_features": _l("Missing features"),
    "switching_provider": _l("Switching to another provider"),
    "not_using": _l("Not using it enough"),
    "other": _l("Another reason"),
}
assert tuple(REASON_LABELS) == CANCEL_REASONS


def _amount_text(value: Decimal, currency: str) -> str:
    """A unit amount as money when the currency's minor unit holds it exactly, else as a
    plain number beside the code (0.002 EUR per call)."""
    exact = Money.from_decimal(value, currency)
    if exact.to_decimal() == value:
        return money(exact)
    return f"{number(value, 2)} {currency}"


def price_terms(price: Price) -> str:
    """How a price charges, in words: "€10.00 per unit", "€30.00 per period", "Tiered"."""
    unit = _amount_text(price.unit_amount, price.currency) if price.unit_amount is not None else ""
    if price.model == PriceModel.FLAT:
        text = _("%(amount)s per period", amount=unit)
    elif price.model == PriceModel.PER_UNIT:
        text = _("%(amount)s per unit", amount=unit)
    elif price.model == PriceModel.PACKAGE:
        text = _("%(amount)s per %(size)s units", amount=unit, size=number(price.package_size or 1))
    else:
        text = _("Tiered price")
    if price.usage_kind == UsageKind.METERED:
        text = _("%(terms)s, by usage (%(metric)s)", terms=text, metric=price.metric)
    return text


def interval_label(interval: str, count: int) -> str:
    """ "monthly", "every 3 months", "yearly"."""
    if interval == "year":
        return _("yearly") if count == 1 else _("every %(num)d years", num=count)
    return _("monthly") if count == 1 else _("every %(num)d months", num=count)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "price_terms": price_terms,
        "interval_label": interval_label,
        "period_amount": period_amount,
        "one_day": ONE_DAY,
    }


def _today() -> dt.date:
    return dt.date.today()


def _actor() -> Actor:
    """The signed-in member of the company as the actor of the audit entry."""
    return Actor(
        label=current_user.email,
        user_id=current_user.id,
        ip_address=request.remote_addr,
        request_id=request.headers.get("X-Request-Id"),
    )


def _load(subscription_id: str) -> Subscription:
    """The current company's subscription, or 404 (unknown, malformed, another's)."""
    subscription = find_subscription(db.session, g.tenant, subscription_id)
    if subscription is None:
        abort(404)
    return subscription


def _item(subscription: Subscription) -> SubscriptionItem:
    """The item named by ``?item=`` (its current price's id), or 404."""
    wanted = (request.args.get("item") or "").strip()
    for item in subscription.items:
        if str(item.price.public_id) == wanted:
            return item
    abort(404)


def _values() -> dict[str, str]:
    return {key: value for key, value in request.form.items() if key != "csrf_token"}


def _message(exc: SubscriptionRefused) -> str:
    return _(exc.message)


def _back(subscription: Subscription) -> Response:
    return redirect(url_for("subscription.index", _anchor=f"s-{subscription.public_id}"), code=303)


def _rows(allowed: SelfService, today: dt.date) -> list[dict[str, Any]]:
    rows = []
    for subscription in company_subscriptions(db.session, g.tenant):
        end = ends_on(subscription, today)
        amounts = [a for a in map(period_amount, subscription.items) if a is not None]
        names = dict.fromkeys(item.price.plan.name for item in subscription.items)
        rows.append(
            {
                "subscription": subscription,
                "title": ", ".join(names) or _("Subscription"),
                "period": shown_period(subscription, today),
                "renews_on": renews_on(subscription, today),
                # The last day with the subscription (the pending end is the first without).
                "last_day": end - ONE_DAY if end else None,
                "changes": period_changes(db.session, subscription, today),
                "options": options(db.session, subscription, allowed, today),
                "total": sum(amounts[1:], amounts[0]) if amounts else None,
            }
        )
    return rows


@bp.get("/subscription")
@tenant_view()
def index():
    """Every subscription with its prices, quantities, period, renewal, trial and pending
    changes; owners and billing admins see what they may change."""
    today = _today()
    return render_page(
        "subscription/page.html",
        "subscription/_list.html",
        rows=_rows(self_service(db.session, g.tenant), today),
        today=today,
        reason_labels=REASON_LABELS,
    )


# -- change an item: form, preview, confirm ----------------------------------------------------


def _change_page(
    subscription: Subscription,
    item: SubscriptionItem,
    allowed: SelfService,
    values: dict,
    errors: dict,
    previewed: Any = None,
):
    today = _today()
    offered = _item_options(subscription, item, allowed, today)
    return render_page(
        "subscription/change.html",
        subscription=subscription,
        item=item,
        offered=offered,
        period=shown_period(subscription, today),
        values=values,
        errors=errors,
        preview=previewed,
    )


def _item_options(
    subscription: Subscription, item: SubscriptionItem, allowed: SelfService, today: dt.date
) -> ItemOptions:
    offered = options(db.session, subscription, allowed, today)
    return next(option for option in offered.items if option.item is item)


def _allowed_to_change(subscription: Subscription, item: SubscriptionItem) -> SelfService:
    """The company's switches; 403 when none lets it change this item."""
    allowed = self_service(db.session, g.tenant)
    offered = _item_options(subscription, item, allowed, _today())
    if not (offered.quantity or offered.prices):
        abort(403)
    return allowed


@bp.get("/subscription/<subscription_id>/change")
@tenant_view("manage_billing")
def change(subscription_id: str):
    """The form that changes one item's quantity or switches it to a self-serve price."""
    subscription = _load(subscription_id)
    item = _item(subscription)
    allowed = _allowed_to_change(subscription, item)
    values = {"quantity": f"{item.quantity.normalize():f}", "price": ""}
    return _change_page(subscription, item, allowed, values, {})


@bp.post("/subscription/<subscription_id>/change")
@tenant_view("manage_billing")
def change_post(subscription_id: str):
    """First the preview of this period's invoice with the change; once confirmed, apply
    it. Refusals re-render the form with the error at its field (200, nothing written)."""
    subscription = _load(subscription_id)
    item = _item(subscription)
    allowed = _allowed_to_change(subscription, item)
    values = _values()
    today = _today()
    try:
        wanted = parse_change(
            db.session,
            subscription,
            allowed,
            item=str(item.price.public_id),
            # A field the form does not offer is not sent; one sent anyway is checked.
            quantity=values.get("quantity") if values.get("quantity", "").strip() else None,
            price=values.get("price") or None,
        )
        if values.get("confirmed") == "yes":
            changed = apply_change(db.session, subscription, _actor(), wanted, today)
            if not changed:
                raise no_change_refusal(wanted)
        else:
            previewed = preview_change(db.session, subscription, wanted, today)
            db.session.rollback()  # the preview wrote nothing; end its transaction
            return _change_page(subscription, item, allowed, values, {}, previewed)
    except SelfServiceForbidden:
        db.session.rollback()
        abort(403)
    except SubscriptionRefused as exc:
        db.session.rollback()
        subscription = _load(subscription_id)
        item = _item(subscription)
        offered = _item_options(subscription, item, allowed, today)
        shown = {"quantity": offered.quantity, "price": bool(offered.prices)}
        # At its field when the form has it; above the form otherwise.
        where = exc.field if shown.get(exc.field or "") else "form"
        return _change_page(subscription, item, allowed, values, {where: _message(exc)})
    flash(_("Your subscription is changed. The next invoice bills the difference."), "success")
    return _back(subscription)


# -- cancel at period end, resume -------------------------------------------------------------


def _cancel_page(subscription: Subscription, values: dict, errors: dict):
    today = _today()
    return render_page(
        "subscription/cancel.html",
        subscription=subscription,
        period=shown_period(subscription, today),
        reasons=REASON_LABELS,
        values=values,
        errors=errors,
    )


def _allowed_to_cancel(subscription: Subscription) -> SelfService:
    allowed = self_service(db.session, g.tenant)
    if not allowed.cancel:
        abort(403)
    return allowed


@bp.get("/subscription/<subscription_id>/cancel")
@tenant_view("manage_billing")
def cancel(subscription_id: str):
    """The cancellation form: at the end of the current period, with a reason."""
    subscription = _load(subscription_id)
    _allowed_to_cancel(subscription)
    if not options(db.session, subscription, self_service(db.session, g.tenant), _today()).cancel:
        flash(_("This subscription cannot be canceled: it ends already."), "error")
        return _back(subscription)
    return _cancel_page(subscription, {}, {})


@bp.post("/subscription/<subscription_id>/cancel")
@tenant_view("manage_billing")
def cancel_post(subscription_id: str):
    """Cancel at period end; a missing reason re-renders the form with its error."""
    subscription = _load(subscription_id)
    allowed = _allowed_to_cancel(subscription)
    values = _values()
    today = _today()
    try:
        cancel_at_period_end(
            db.session,
            subscription,
            _actor(),
            allowed,
            reason=values.get("reason"),
            comment=values.get("comment"),
            today=today,
        )
    except SubscriptionRefused as exc:
        db.session.rollback()
        subscription = _load(subscription_id)
        if exc.field in ("reason", "comment"):
            return _cancel_page(subscription, values, {exc.field: _message(exc)})
        flash(_message(exc), "error")
        return _back(subscription)
    end = ends_on(subscription, today)
    flash(
        _(
            "Your subscription ends on %(date)s. Until then everything stays as it is.",
            date=_date_text(end - ONE_DAY if end else None),
        ),
        "success",
    )
    return _back(subscription)


def _date_text(day: dt.date | None) -> str:
    # The flash is shown on the next page: the date is formatted now, in the viewer's locale.
    return date_short(day) if day else ""


@bp.post("/subscription/<subscription_id>/resume")
@tenant_view("manage_billing")
def resume_post(subscription_id: str):
    """Withdraw the pending cancellation: the subscription renews."""
    subscription = _load(subscription_id)
    allowed = _allowed_to_cancel(subscription)
    try:
        resume(db.session, subscription, _actor(), allowed, today=_today())
    except SubscriptionRefused as exc:
        db.session.rollback()
        flash(_message(exc), "error")
        return _back(_load(subscription_id))
    flash(_("Your subscription continues: it renews at the end of the period."), "success")
    return _back(subscription)
