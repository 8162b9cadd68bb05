"""Admin pages of a company's subscriptions (subscribe, change with preview, cancel, resume,
coupons) and its one-off charges."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.catalog.coupons import add_coupon, coupon_by_uid, remove_coupon, subscription_coupons
from portal.catalog.models import ChargeTiming, Subscription, SubscriptionItem, TaxTreatment
from portal.catalog.products import CatalogInvalid
from portal.catalog.queries import applied_coupon, offered_coupons
from portal.catalog.subscriptions import (
    ItemChange,
    NewItem,
    SubscriptionRefused,
    cancel_subscription,
    change_item,
    company_subscriptions,
    create_subscription,
    current_period,
    find_price,
    find_subscription,
    offered_prices,
    parse_quantity,
    pending_end,
    preview,
    resume_subscription,
)
from portal.extensions import db
from portal.invoices.charges import ChargeRefused, NewCharge, add_charge, company_charges
from portal.tenancy.models import Tenant
from portal.web.admin.blueprint import bp
from portal.web.admin.common import current_actor, load_company, positive_int, translated
from portal.web.guards import admin_view

#: Price rows of the new subscription form.
ITEM_ROWS = 4
#: Subscriptions per page of the list.
PAGE_SIZE = 20
#: What the confirmation pages do to a subscription.
ACTIONS = ("cancel", "resume")


def _date(values: dict[str, str], name: str, errors: dict[str, str], *, required: bool):
    text = (values.get(name) or "").strip()
    if not text:
        if required:
            errors[name] = _("Enter a date.")
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors[name] = _("Enter a date as YYYY-MM-DD.")
        return None


def _shown_period(subscription: Subscription) -> tuple[dt.date, dt.date]:
    """The current period as pages show it: first and last day."""
    start, end = current_period(subscription, dt.date.today())
    return start, end - dt.timedelta(days=1)


def _refusal(exc: SubscriptionRefused | ChargeRefused, errors: dict[str, str]) -> None:
    errors[exc.field or "form"] = translated(exc.message)


def _load_subscription(tenant: Tenant, subscription_id: str) -> Subscription:
    subscription = find_subscription(db.session, tenant, subscription_id)
    if subscription is None:
        abort(404)
    return subscription


def _back(tenant: Tenant):
    return redirect(url_for("admin.subscriptions", company_id=tenant.public_id), code=303)


# -- list --------------------------------------------------------------------------------------


@bp.get("/companies/<company_id>/subscriptions")
@admin_view
def subscriptions(company_id: str):
    """The company's subscriptions with items, periods, trial and pending cancellation."""
    tenant = load_company(company_id)
    query = (request.args.get("q") or "").strip().lower()
    page = positive_int(request.args.get("page"), 1) or 1
    rows = company_subscriptions(db.session, tenant)
    if query:
        rows = [
            s
            for s in rows
            if query in s.status.value
            or any(
                query in (item.price.nickname or "").lower() or query in item.price.code.lower()
                for item in s.items
            )
        ]
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    applying = {
        s.id: [c.code for _a, c, applies in subscription_coupons(db.session, s) if applies]
        for s in shown
    }
    return render_template(
        "admin/subscriptions.html",
        tenant=tenant,
        subscriptions=shown,
        periods={s.id: _shown_period(s) for s in shown},
        ends={s.id: pending_end(s) for s in shown},
        coupon_names=applying,
        query=query,
        page=page,
        pages=max(1, -(-len(rows) // PAGE_SIZE)),
        total=len(rows),
    )


# -- new ---------------------------------------------------------------------------------------


def _new_form(tenant: Tenant, values: dict, errors: dict, status: int = 200):
    response = render_template(
        "admin/subscription_new.html",
        tenant=tenant,
        prices=offered_prices(db.session, tenant),
        rows=range(ITEM_ROWS),
        values=values,
        errors=errors,
    )
    return response, status


@bp.get("/companies/<company_id>/subscriptions/new")
@admin_view
def new_subscription(company_id: str):
    """The form that subscribes the company to one or more prices."""
    tenant = load_company(company_id)
    return _new_form(tenant, {"start": dt.date.today().isoformat()}, {})


@bp.post("/companies/<company_id>/subscriptions/new")
@admin_view
def create_subscription_view(company_id: str):
    """Subscribe the company; errors re-render the form inline (200, so htmx swaps it)."""
    tenant = load_company(company_id)
    values = {key: value for key, value in request.form.items() if key != "csrf_token"}
    errors: dict[str, str] = {}
    start = _date(values, "start", errors, required=True)
    anchor = _date(values, "billing_anchor", errors, required=False)
    trial_end = _date(values, "trial_end", errors, required=False)
    items = []
    try:
        for row in range(ITEM_ROWS):
            price_id = (values.get(f"items.{row}.price") or "").strip()
            if not price_id:
                continue
            price = find_price(db.session, tenant, price_id, field=f"items.{row}.price")
            quantity = parse_quantity(
                values.get(f"items.{row}.quantity"), field=f"items.{row}.quantity"
            )
            items.append(NewItem(price, quantity))
        if not errors and start is not None:
            subscription = create_subscription(
                db.session,
                tenant,
                current_actor(),
                items=items,
                start=start,
                billing_anchor=anchor,
                trial_end=trial_end,
            )
    except SubscriptionRefused as exc:
        _refusal(exc, errors)
    if errors:
        db.session.rollback()
        return _new_form(tenant, values, errors)
    flash(_("The subscription of %(company)s is created.", company=tenant.name), "success")
    return redirect(
        url_for(
            "admin.subscriptions", company_id=tenant.public_id, _anchor=str(subscription.public_id)
        ),
        code=303,
    )


# -- change with preview -----------------------------------------------------------------------


def _change_page(
    tenant: Tenant,
    subscription: Subscription,
    values: dict,
    errors: dict,
    previewed: Any = None,
    confirm: bool = False,
):
    return render_template(
        "admin/subscription_change.html",
        tenant=tenant,
        subscription=subscription,
        prices=[
            p
            for p in offered_prices(db.session, tenant)
            if (p.interval, p.interval_count)
            == (subscription.interval, subscription.interval_count)
            and p.usage_kind.value == "licensed"
        ],
        period=_shown_period(subscription),
        values=values,
        errors=errors,
        preview=previewed,
        confirm=confirm,
    )


def _parse_change(subscription: Subscription, values: dict, errors: dict) -> ItemChange | None:
    item = next(
        (i for i in subscription.items if str(i.id) == (values.get("item") or "").strip()),
        None,
    )
    if item is None:
        errors["item"] = _("Choose an item.")
    on = _date(values, "on", errors, required=True)
    tenant = db.session.get_one(Tenant, subscription.tenant_id)
    price = None
    quantity = None
    try:
        if (values.get("price") or "").strip():
            price = find_price(db.session, tenant, values["price"])
        quantity = parse_quantity(values.get("quantity"))
    except SubscriptionRefused as exc:
        _refusal(exc, errors)
    if quantity is None and price is None and "quantity" not in errors:
        errors["quantity"] = _("Enter a new quantity or choose a new price.")
    if errors or item is None or on is None:
        return None
    return ItemChange(item, on, quantity=quantity, price=price)


@bp.get("/companies/<company_id>/subscriptions/<subscription_id>/change")
@admin_view
def change_subscription(company_id: str, subscription_id: str):
    """The form that changes an item's quantity or price from a day."""
    tenant = load_company(company_id)
    subscription = _load_subscription(tenant, subscription_id)
    first: SubscriptionItem | None = next(
        (i for i in subscription.items if i.price.usage_kind.value == "licensed"), None
    )
    values = {
        "item": str(first.id) if first else "",
        "on": dt.date.today().isoformat(),
        "quantity": f"{first.quantity.normalize():f}" if first else "",
    }
    return _change_page(tenant, subscription, values, {})


@bp.post("/companies/<company_id>/subscriptions/<subscription_id>/change")
@admin_view
def change_subscription_post(company_id: str, subscription_id: str):
    """First post: the preview of the period's invoice with the change. Confirmed: apply."""
    tenant = load_company(company_id)
    subscription = _load_subscription(tenant, subscription_id)
    values = {key: value for key, value in request.form.items() if key != "csrf_token"}
    errors: dict[str, str] = {}
    change = _parse_change(subscription, values, errors)
    if change is None:
        db.session.rollback()
        return _change_page(tenant, subscription, values, errors)
    try:
        if values.get("confirmed") == "yes":
            change_item(db.session, subscription, current_actor(), change)
        else:
            previewed = preview(db.session, subscription, change)
            db.session.rollback()  # the preview wrote nothing; end its transaction
            return _change_page(tenant, subscription, values, {}, previewed, confirm=True)
    except SubscriptionRefused as exc:
        db.session.rollback()
        _refusal(exc, errors)
        return _change_page(tenant, subscription, values, errors)
    flash(_("The subscription is changed; the next invoice prorates it."), "success")
    return _back(tenant)


# -- cancel and resume -------------------------------------------------------------------------


def _confirm_page(tenant, subscription, action, values, errors):
    return render_template(
        "admin/subscription_confirm.html",
        tenant=tenant,
        subscription=subscription,
        action=action,
        period=_shown_period(subscription),
        ends_on=pending_end(subscription),
        values=values,
        errors=errors,
    )


@bp.get("/companies/<company_id>/subscriptions/<subscription_id>/<action>")
@admin_view
def confirm_subscription(company_id: str, subscription_id: str, action: str):
    """Confirmation of a cancellation (at period end or now, with a reason) or a resume."""
    if action not in ACTIONS:
        abort(404)
    tenant = load_company(company_id)
    subscription = _load_subscription(tenant, subscription_id)
    values = {"when": "period_end", "on": dt.date.today().isoformat()}
    return _confirm_page(tenant, subscription, action, values, {})


@bp.post("/companies/<company_id>/subscriptions/<subscription_id>/<action>")
@admin_view
def act_on_subscription(company_id: str, subscription_id: str, action: str):
    """Cancel or resume, once confirmed; a refusal re-renders the confirmation inline."""
    if action not in ACTIONS:
        abort(404)
    tenant = load_company(company_id)
    subscription = _load_subscription(tenant, subscription_id)
    values = {key: value for key, value in request.form.items() if key != "csrf_token"}
    errors: dict[str, str] = {}
    try:
        if action == "resume":
            resume_subscription(db.session, subscription, current_actor())
            flash(_("The cancellation is withdrawn: the subscription renews."), "success")
            return _back(tenant)
        at_period_end = values.get("when", "period_end") != "now"
        on = None if at_period_end else _date(values, "on", errors, required=False)
        if not errors:
            result = cancel_subscription(
                db.session,
                subscription,
                current_actor(),
                at_period_end=at_period_end,
                reason=values.get("reason"),
                on=on,
            )
    except SubscriptionRefused as exc:
        _refusal(exc, errors)
    if errors:
        db.session.rollback()
        return _confirm_page(tenant, subscription, action, values, errors)
    if result.invoice is not None:
        flash(_("The subscription is canceled; its final invoice is issued."), "success")
        return redirect(url_for("admin.invoice", invoice_id=result.invoice.public_id), code=303)
    if at_period_end:
        flash(_("The subscription ends with its current period."), "success")
    else:
        flash(_("The subscription is canceled."), "success")
    return _back(tenant)


# -- coupons -----------------------------------------------------------------------------------


def _to_coupons(tenant: Tenant, subscription: Subscription):
    return redirect(
        url_for(
            "admin.subscription_coupons_page",
            company_id=tenant.public_id,
            subscription_id=subscription.public_id,
        ),
        code=303,
    )


def _coupons_page(tenant, subscription, values, errors):
    return render_template(
        "admin/subscription_coupons.html",
        tenant=tenant,
        subscription=subscription,
        applied_coupons=subscription_coupons(db.session, subscription),
        offered=offered_coupons(db.session, subscription, tenant.seller_id),
        values=values,
        errors=errors,
    )


@bp.get("/companies/<company_id>/subscriptions/<subscription_id>/coupons")
@admin_view
def subscription_coupons_page(company_id: str, subscription_id: str):
    """The subscription's coupons (removed ones too) and the form that adds one."""
    tenant = load_company(company_id)
    return _coupons_page(tenant, _load_subscription(tenant, subscription_id), {}, {})


@bp.post("/companies/<company_id>/subscriptions/<subscription_id>/coupons")
@admin_view
def add_subscription_coupon(company_id: str, subscription_id: str):
    """Put the chosen coupon on the subscription; a refusal re-renders the form inline."""
    tenant = load_company(company_id)
    subscription = _load_subscription(tenant, subscription_id)
    values = {"coupon": (request.form.get("coupon") or "").strip()}
    coupon = coupon_by_uid(db.session, values["coupon"]) if values["coupon"] else None
    errors: dict[str, str] = {}
    if coupon is None or coupon.seller_id != tenant.seller_id:
        errors["coupon"] = _("Choose a coupon.") if not values["coupon"] else _("Unknown coupon.")
    else:
        try:
            add_coupon(db.session, subscription, coupon, current_actor())
        except CatalogInvalid as exc:
            for field, message in exc.errors.items():
                errors["coupon" if field == "coupon" else "form"] = translated(message)
    if errors:
        db.session.rollback()
        return _coupons_page(tenant, subscription, values, errors)
    flash(_("The coupon is on the subscription: the next invoices carry its discount."), "success")
    return _to_coupons(tenant, subscription)


def _applied(tenant: Tenant, subscription_id: str, coupon_id: str):
    subscription = _load_subscription(tenant, subscription_id)
    coupon = coupon_by_uid(db.session, coupon_id)
    applied = applied_coupon(db.session, subscription, coupon) if coupon else None
    if applied is None or coupon is None:
        abort(404)
    return subscription, coupon, applied


@bp.get("/companies/<company_id>/subscriptions/<subscription_id>/coupons/<coupon_id>/remove")
@admin_view
def confirm_remove_coupon(company_id: str, subscription_id: str, coupon_id: str):
    """Confirmation before a coupon comes off the subscription."""
    tenant = load_company(company_id)
    subscription, coupon, _applied_row = _applied(tenant, subscription_id, coupon_id)
    return render_template(
        "admin/subscription_coupon_remove.html",
        tenant=tenant,
        subscription=subscription,
        coupon=coupon,
    )


@bp.post("/companies/<company_id>/subscriptions/<subscription_id>/coupons/<coupon_id>/remove")
@admin_view
def remove_subscription_coupon(company_id: str, subscription_id: str, coupon_id: str):
    """Take the coupon off (again: nothing changes)."""
    tenant = load_company(company_id)
    subscription, _coupon, applied = _applied(tenant, subscription_id, coupon_id)
    remove_coupon(db.session, applied, current_actor())
    flash(
        _("The coupon is removed: invoices planned from now on carry no discount of it."), "success"
    )
    return _to_coupons(tenant, subscription)


# -- one-off charges ---------------------------------------------------------------------------


CHARGE_DEFAULTS = {
    "quantity": "1",
    "tax_treatment": TaxTreatment.SERVICES.value,
    "timing": ChargeTiming.NEXT_INVOICE.value,
}


def _charge_page(tenant: Tenant, values: dict, errors: dict):
    return render_template(
        "admin/charges.html",
        tenant=tenant,
        charges=company_charges(db.session, tenant),
        values=values,
        errors=errors,
    )


@bp.get("/companies/<company_id>/charges")
@admin_view
def charges(company_id: str):
    """The company's one-off charges and the form that adds one."""
    return _charge_page(load_company(company_id), dict(CHARGE_DEFAULTS), {})


@bp.post("/companies/<company_id>/charges")
@admin_view
def add_charge_view(company_id: str):
    """Add a one-off charge; errors re-render the form inline."""
    tenant = load_company(company_id)
    values = {key: value for key, value in request.form.items() if key != "csrf_token"}
    new = NewCharge(
        description=values.get("description", ""),
        quantity=(values.get("quantity") or "").replace(",", "."),
        unit_price=(values.get("unit_price") or "").replace(",", "."),
        tax_treatment=values.get("tax_treatment", ""),
        timing=values.get("timing", ""),
        vat_exemption_reason=values.get("vat_exemption_reason") or None,
    )
    try:
        charge = add_charge(db.session, tenant, current_actor(), new)
    except ChargeRefused as exc:
        db.session.rollback()
        errors: dict[str, str] = {}
        _refusal(exc, errors)
        return _charge_page(tenant, values, errors)
    if charge.invoice_id is not None:
        flash(_("The charge is issued as an invoice of its own."), "success")
    else:
        flash(_("The charge will be billed on the next invoice."), "success")
    return redirect(url_for("admin.charges", company_id=tenant.public_id), code=303)
