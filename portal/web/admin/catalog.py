"""Admin pages of the catalog: products and their prices (every model), and coupons.

The pages parse forms into the catalog services' values and show their field errors
inline; every write is a service call (audited there). The price form shows the fields of
the chosen model (htmx swaps the form when the model changes; without JavaScript the
"Show the fields" button does the same), with one row per tier and "Add a tier".
"""

from __future__ import annotations

import math
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.catalog import coupons as coupon_services
from portal.catalog import products as catalog
from portal.catalog.models import (
    BillingInterval,
    CouponDuration,
    PriceModel,
    TaxTreatment,
    UsageKind,
)
from portal.catalog.products import CatalogInvalid
from portal.extensions import db
from portal.ops.audit import N_
from portal.web.admin.blueprint import bp
from portal.web.admin.common import current_actor, positive_int, translated
from portal.web.guards import admin_view
from portal.web.htmx import render_page

PAGE_SIZE = 25
#: Blank tier rows a new tiered price starts with.
NEW_TIERS = 2
TIERS_MAX = catalog.TIERS_MAX


def _page_args() -> tuple[str, int]:
    search = request.args.get("q", "").strip()[:100].replace("\x00", "")
    page = positive_int(request.args.get("page"), 1) or 1
    return search, page


def _errors(exc: CatalogInvalid) -> dict[str, str]:
    return {field: translated(message) for field, message in exc.errors.items()}


def _product(product_id: str):
    plan = catalog.product_by_uid(db.session, product_id)
    if plan is None:
        abort(404)
    return plan


def _price(price_id: str):
    price = catalog.price_by_uid(db.session, price_id)
    if price is None:
        abort(404)
    return price


def _coupon(coupon_id: str):
    coupon = coupon_services.coupon_by_uid(db.session, coupon_id)
    if coupon is None:
        abort(404)
    return coupon


# --- products --------------------------------------------------------------------------------


@bp.get("/catalog")
@admin_view
def catalog_index():
    """Products with search (code or name) and paging; htmx searches get the rows only."""
    search, page = _page_args()
    products, total = catalog.find_products(
        db.session, search=search, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    return render_page(
        "admin/catalog.html",
        "admin/catalog_products.html",
        products=products,
        total=total,
        search=search,
        page_number=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
    )


def _product_form(values: dict, errors: dict | None = None, plan=None, status: int = 200):
    response = render_page(
        "admin/catalog_product_form.html",
        None,
        values=values,
        errors=errors or {},
        plan=plan,
        sellers=catalog.all_sellers(db.session),
    )
    response.status_code = status
    return response


def _product_values(form) -> dict[str, Any]:
    return {name: form.get(name, "") for name in catalog.PRODUCT_FIELDS}


@bp.get("/catalog/new")
@admin_view
def new_product():
    """The form of a new product."""
    return _product_form({"code": "", "name": "", "description": "", "seller": ""})


@bp.post("/catalog")
@admin_view
def create_product():
    """Create a product; errors re-render the form inline."""
    values = _product_values(request.form)
    seller = catalog.seller_by_uid(db.session, request.form.get("seller", ""))
    try:
        if seller is None:
            raise CatalogInvalid({"seller": N_("Choose the seller.")})
        plan = catalog.create_product(db.session, seller, values, current_actor())
    except CatalogInvalid as exc:
        db.session.rollback()
        return _product_form({**values, "seller": request.form.get("seller", "")}, _errors(exc))
    flash(_("Product %(name)s created.", name=plan.name), "success")
    return redirect(url_for("admin.product", product_id=plan.public_id), code=303)


@bp.get("/catalog/<product_id>")
@admin_view
def product(product_id: str):
    """A product with its prices (current versions first, then archived ones)."""
    plan = _product(product_id)
    prices = sorted(plan.prices, key=lambda p: (p.archived_at is not None, p.code))
    return render_template("admin/catalog_product.html", plan=plan, prices=prices)


@bp.get("/catalog/<product_id>/edit")
@admin_view
def edit_product(product_id: str):
    """The form of a product's name, code and description."""
    plan = _product(product_id)
    return _product_form(
        {"code": plan.code, "name": plan.name, "description": plan.description or ""}, plan=plan
    )


@bp.post("/catalog/<product_id>")
@admin_view
def update_product(product_id: str):
    """Save a product's fields; errors re-render the form inline."""
    plan = _product(product_id)
    values = _product_values(request.form)
    try:
        catalog.update_product(db.session, plan, values, current_actor())
    except CatalogInvalid as exc:
        db.session.rollback()
        return _product_form(values, _errors(exc), plan=_product(product_id))
    flash(_("Product %(name)s saved.", name=plan.name), "success")
    return redirect(url_for("admin.product", product_id=plan.public_id), code=303)


def _confirm(title: str, text: str, action: str, back: str, button: str):
    return render_template(
        "admin/catalog_confirm.html",
        title=title,
        text=text,
        action=action,
        back=back,
        button=button,
    )


@bp.get("/catalog/<product_id>/archive")
@admin_view
def confirm_archive_product(product_id: str):
    """Confirmation step of archiving a product."""
    plan = _product(product_id)
    return _confirm(
        _("Archive product %(name)s?", name=plan.name),
        _(
            "New subscriptions can no longer use it or its prices; existing subscriptions keep "
            "billing them, and every invoice stays as it is."
        ),
        url_for("admin.archive_product", product_id=plan.public_id),
        url_for("admin.product", product_id=plan.public_id),
        _("Archive product"),
    )


@bp.post("/catalog/<product_id>/archive")
@admin_view
def archive_product(product_id: str):
    """Archive a product (after the confirmation step)."""
    plan = _product(product_id)
    catalog.archive_product(db.session, plan, current_actor())
    flash(_("Product %(name)s archived.", name=plan.name), "success")
    return redirect(url_for("admin.product", product_id=plan.public_id), code=303)


# --- prices ----------------------------------------------------------------------------------

_CHOICES = {
    "models": [
        (PriceModel.FLAT.value, N_("Flat fee")),
        (PriceModel.PER_UNIT.value, N_("Per unit")),
        (PriceModel.GRADUATED.value, N_("Graduated tiers")),
        (PriceModel.VOLUME.value, N_("Volume tiers")),
        (PriceModel.PACKAGE.value, N_("Package")),
    ],
    "usage_kinds": [
        (UsageKind.LICENSED.value, N_("Licensed")),
        (UsageKind.METERED.value, N_("Metered")),
    ],
    "intervals": [
        (BillingInterval.MONTH.value, N_("Month")),
        (BillingInterval.YEAR.value, N_("Year")),
    ],
    "tax_treatments": [
        (TaxTreatment.SERVICES.value, N_("Services")),
        (TaxTreatment.GOODS.value, N_("Goods")),
    ],
}


def _blank_price() -> dict[str, Any]:
    return {
        "code": "",
        "nickname": "",
        "currency": "EUR",
        "model": PriceModel.FLAT.value,
        "usage_kind": UsageKind.LICENSED.value,
        "metric": "",
        "interval": BillingInterval.MONTH.value,
        "interval_count": "1",
        "unit_amount": "",
        "package_size": "",
        "unit_code": "C62",
        "trial_days": "0",
        "tax_treatment": TaxTreatment.SERVICES.value,
        "vat_exemption_reason": "",
        "self_serve": False,
        "tiers": [],
    }


def _tier_rows(values: dict) -> list[dict]:
    """The tier rows the form shows: the price's tiers, or blank rows for a new one."""
    tiers = list(values.get("tiers") or [])
    if values.get("model") in ("graduated", "volume") and not tiers:
        tiers = [{"up_to": "", "unit_amount": "", "flat_amount": ""} for _ in range(NEW_TIERS)]
    return tiers


def _price_values(form, *, keep_blank: bool = False) -> dict[str, Any]:
    """The price's values from a posted form (text stays text: the service parses).

    Blank tier rows are dropped (so error indices match the rows shown again), except
    while the form is being edited (``keep_blank``: "Add a tier", a model change)."""
    values = {
        name: form.get(name, "")
        for name in catalog.PRICE_FIELDS
        if name not in ("tiers", "self_serve")
    }
    values["self_serve"] = form.get("self_serve") == "on"
    count = min(positive_int(form.get("tier_count"), 0) or 0, TIERS_MAX)
    tiers = []
    for index in range(count):
        row = {
            field: form.get(f"tier-{index}-{field}", "").strip() for field in catalog.TIER_FIELDS
        }
        if keep_blank or any(row.values()):
            tiers.append(row)
    values["tiers"] = tiers
    if values["model"] not in ("graduated", "volume"):
        values["tiers"] = []
    return values


def _with_args(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the query string's: the whole form when htmx sends it (a model
    change), else only the fields a link names, so the other defaults stay filled in."""
    if not request.args:
        return values
    parsed = _price_values(request.args, keep_blank=True)
    if "csrf_token" not in request.args:
        named = set(request.args) | ({"tiers"} if "tier_count" in request.args else set())
        parsed = {name: value for name, value in parsed.items() if name in named}
        if parsed.get("model", values.get("model")) not in ("graduated", "volume"):
            parsed["tiers"] = []
    return {**values, **parsed}


def _service_values(values: dict) -> dict[str, Any]:
    """Form values as the services take them: the tiers' empty bounds are none."""
    clean = dict(values)
    clean["tiers"] = [
        {k: (v if v != "" else None) for k, v in tier.items()} for tier in values["tiers"]
    ]
    return clean


def _price_form(plan, values: dict, errors: dict | None = None, price=None, status: int = 200):
    invoiced = price is not None and catalog.price_invoiced(db.session, price)
    response = render_page(
        "admin/catalog_price.html",
        "admin/catalog_price_form.html",
        plan=plan,
        price=price,
        invoiced=invoiced,
        values=values,
        tiers=_tier_rows(values),
        errors=errors or {},
        choices=_CHOICES,
        tiers_max=TIERS_MAX,
    )
    response.status_code = status
    return response


def _form_values_of(price) -> dict[str, Any]:
    values = catalog.price_dict(price)
    for name in ("unit_amount", "package_size", "metric", "vat_exemption_reason"):
        values[name] = values[name] or ""
    values["tiers"] = [
        {k: (v if v is not None else "") for k, v in tier.items()} for tier in values["tiers"]
    ]
    return values


@bp.get("/catalog/<product_id>/prices/new")
@admin_view
def new_price(product_id: str):
    """The form of a new price; ``?model=`` (htmx on change) shows that model's fields."""
    plan = _product(product_id)
    return _price_form(plan, _with_args(_blank_price()))


@bp.post("/catalog/<product_id>/prices")
@admin_view
def create_price(product_id: str):
    """Create a price; errors (or "Add a tier", "Show the fields") re-render the form."""
    plan = _product(product_id)
    editing = "add_tier" in request.form or "refresh" in request.form
    values = _price_values(request.form, keep_blank=editing)
    if editing:
        return _price_form(plan, _with_tier(values))
    try:
        price = catalog.create_price(db.session, plan, _service_values(values), current_actor())
    except CatalogInvalid as exc:
        db.session.rollback()
        return _price_form(_product(product_id), values, _errors(exc))
    flash(_("Price %(code)s created.", code=price.code), "success")
    return redirect(url_for("admin.product", product_id=plan.public_id), code=303)


def _with_tier(values: dict) -> dict:
    if "add_tier" in request.form and len(values["tiers"]) < TIERS_MAX:
        values["tiers"] = [*values["tiers"], {"up_to": "", "unit_amount": "", "flat_amount": ""}]
    return values


@bp.get("/prices/<price_id>/edit")
@admin_view
def edit_price(price_id: str):
    """The form of a price's terms (an invoiced price gets a new version when saved)."""
    price = _price(price_id)
    return _price_form(price.plan, _with_args(_form_values_of(price)), price=price)


@bp.post("/prices/<price_id>")
@admin_view
def update_price(price_id: str):
    """Save a price's terms: in place, or as a new version once invoiced."""
    price = _price(price_id)
    editing = "add_tier" in request.form or "refresh" in request.form
    values = _price_values(request.form, keep_blank=editing)
    if editing:
        return _price_form(price.plan, _with_tier(values), price=price)
    try:
        saved = catalog.update_price(db.session, price, _service_values(values), current_actor())
    except CatalogInvalid as exc:
        db.session.rollback()
        price = _price(price_id)
        return _price_form(price.plan, values, _errors(exc), price=price)
    if saved is not price:
        flash(
            _(
                "Version %(version)d of %(code)s created; invoices and subscriptions keep the "
                "earlier one.",
                version=saved.version,
                code=saved.code,
            ),
            "success",
        )
    else:
        flash(_("Price %(code)s saved.", code=saved.code), "success")
    return redirect(url_for("admin.product", product_id=saved.plan.public_id), code=303)


@bp.get("/prices/<price_id>/archive")
@admin_view
def confirm_archive_price(price_id: str):
    """Confirmation step of archiving a price."""
    price = _price(price_id)
    return _confirm(
        _("Archive price %(code)s?", code=price.code),
        _("New subscriptions can no longer use it; existing subscriptions keep billing it."),
        url_for("admin.archive_price", price_id=price.public_id),
        url_for("admin.product", product_id=price.plan.public_id),
        _("Archive price"),
    )


@bp.post("/prices/<price_id>/archive")
@admin_view
def archive_price(price_id: str):
    """Archive a price (after the confirmation step)."""
    price = _price(price_id)
    catalog.archive_price(db.session, price, current_actor())
    flash(_("Price %(code)s archived.", code=price.code), "success")
    return redirect(url_for("admin.product", product_id=price.plan.public_id), code=303)


# --- coupons ---------------------------------------------------------------------------------


@bp.get("/coupons")
@admin_view
def coupons():
    """Coupons with search (code or name) and paging."""
    search, page = _page_args()
    found, total = coupon_services.find_coupons(
        db.session, search=search, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    return render_page(
        "admin/coupons.html",
        "admin/coupons_list.html",
        coupons=found,
        total=total,
        search=search,
        page_number=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
    )


_COUPON_BLANK = {
    "code": "",
    "name": "",
    "kind": "percent",
    "percent_off": "",
    "amount_off_minor": "",
    "currency": "EUR",
    "duration": CouponDuration.ONCE.value,
    "duration_periods": "",
    "seller": "",
}


def _coupon_form(values: dict, errors: dict | None = None):
    return render_page(
        "admin/coupons_form.html",
        None,
        values=values,
        errors=errors or {},
        sellers=catalog.all_sellers(db.session),
        durations=[
            (CouponDuration.ONCE.value, _("Once: the next invoice")),
            (CouponDuration.REPEATING.value, _("Repeating: a number of invoices")),
            (CouponDuration.FOREVER.value, _("Forever")),
        ],
    )


@bp.get("/coupons/new")
@admin_view
def new_coupon():
    """The form of a new coupon."""
    return _coupon_form(dict(_COUPON_BLANK))


@bp.post("/coupons")
@admin_view
def create_coupon():
    """Create a coupon; errors re-render the form inline."""
    form = request.form
    values = {name: form.get(name, "").strip() for name in _COUPON_BLANK}
    service: dict[str, Any] = {
        name: values[name] for name in ("code", "name", "duration", "duration_periods")
    }
    if values["kind"] == "amount":
        service["amount_off_minor"] = _minor(values["amount_off_minor"], values["currency"])
        service["currency"] = values["currency"]
    else:
        service["percent_off"] = values["percent_off"]
    if service["duration"] != CouponDuration.REPEATING.value:
        service["duration_periods"] = None
    seller = catalog.seller_by_uid(db.session, values["seller"])
    try:
        if seller is None:
            raise CatalogInvalid({"seller": N_("Choose the seller.")})
        coupon = coupon_services.create_coupon(db.session, seller, service, current_actor())
    except CatalogInvalid as exc:
        db.session.rollback()
        errors = _errors(exc)
        if "amount_off_minor" in errors:
            errors.pop("amount_off_minor")
            errors["amount_off"] = _("Enter a positive amount such as 10.00.")
        return _coupon_form(values, errors)
    flash(_("Coupon %(code)s created.", code=coupon.code), "success")
    return redirect(url_for("admin.coupons"), code=303)


def _minor(amount: str, currency: str) -> Any:
    """The form's amount in major units as minor units, or the text (the service refuses)."""
    try:
        money = catalog.money_from_text(amount, currency)
    except ValueError:
        return amount or None
    return money


@bp.get("/coupons/<coupon_id>/archive")
@admin_view
def confirm_archive_coupon(coupon_id: str):
    """Confirmation step of archiving a coupon."""
    coupon = _coupon(coupon_id)
    return _confirm(
        _("Archive coupon %(code)s?", code=coupon.code),
        _("It can no longer be added to subscriptions; where it is, it keeps discounting."),
        url_for("admin.archive_coupon", coupon_id=coupon.public_id),
        url_for("admin.coupons"),
        _("Archive coupon"),
    )


@bp.post("/coupons/<coupon_id>/archive")
@admin_view
def archive_coupon(coupon_id: str):
    """Archive a coupon (after the confirmation step)."""
    coupon = _coupon(coupon_id)
    coupon_services.archive_coupon(db.session, coupon, current_actor())
    flash(_("Coupon %(code)s archived.", code=coupon.code), "success")
    return redirect(url_for("admin.coupons"), code=303)
