"""Admin pages of the sellers (the operator's own legal entities): list, new, edit, logo."""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from portal.db import parse_public_id
from portal.domain.tax import COUNTRY_CODES
from portal.extensions import db
from portal.tenancy.models import Seller, Tenant
from portal.tenancy.profiles import country_name
from portal.tenancy.sellers import (
    DEFAULTS,
    SELLER_FIELDS,
    SellerInvalid,
    create_seller,
    set_seller_logo,
    update_seller,
)
from portal.web.admin.blueprint import bp
from portal.web.admin.common import current_actor, positive_int, translated
from portal.web.guards import admin_view
from portal.web.htmx import render_page

#: Sellers on one page of the list.
PAGE_SIZE = 25


def load_seller(seller_id: str) -> Seller:
    """A seller by its public id; unknown or malformed ids answer 404."""
    uid = parse_public_id(seller_id)
    seller = (
        db.session.scalars(sa.select(Seller).where(Seller.public_id == uid)).first()
        if uid
        else None
    )
    if seller is None:
        abort(404)
    return seller


def _form_values(form: Any) -> dict[str, Any]:
    """The posted seller fields as typed (the service cleans and checks them)."""
    return {name: form.get(name, "") for name in SELLER_FIELDS}


def _country_choices() -> list[tuple[str, str]]:
    locale = str(get_locale() or "en")
    pairs = [(code, country_name(code, locale)) for code in COUNTRY_CODES]
    return sorted(pairs, key=lambda pair: pair[1].casefold())


def _logo_uri(seller: Seller | None) -> str | None:
    if seller is None or not seller.logo or not seller.logo_mime:
        return None
    return f"data:{seller.logo_mime};base64,{base64.b64encode(seller.logo).decode('ascii')}"


def _form_page(seller: Seller | None, values: dict, errors: dict | None = None):
    return render_page(
        "admin/seller.html",
        "admin/_seller_form.html",
        seller=seller,
        values=values,
        errors={k: translated(v) for k, v in (errors or {}).items()},
        countries=_country_choices(),
        logo=_logo_uri(seller),
    )


@bp.get("/sellers")
@admin_view
def sellers():
    """The sellers with their country, VAT ID, currency and number of companies."""
    search = request.args.get("q", "")[:100].strip()
    page = positive_int(request.args.get("page"), 1)
    if page is None:
        abort(404)
    counts = (
        sa.select(Tenant.seller_id, sa.func.count().label("companies"))
        .group_by(Tenant.seller_id)
        .subquery()
    )
    query = sa.select(Seller, sa.func.coalesce(counts.c.companies, 0)).outerjoin(
        counts, counts.c.seller_id == Seller.id
    )
    if search:
        needle = f"%{search.replace('%', '').replace('_', '')}%"
        query = query.where(
            sa.or_(
                Seller.legal_name.ilike(needle),
                Seller.trading_name.ilike(needle),
                Seller.vat_id.ilike(needle),
            )
        )
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = db.session.execute(
        query.order_by(Seller.legal_name, Seller.id).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    return render_page(
        "admin/sellers.html",
        "admin/_sellers.html",
        rows=rows,
        search=search,
        page_number=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
    )


@bp.get("/sellers/new")
@admin_view
def new_seller():
    """The form of a new seller, with the default number formats, currency and terms."""
    return _form_page(None, {name: DEFAULTS.get(name, "") for name in SELLER_FIELDS})


@bp.post("/sellers")
@admin_view
def create_seller_view():
    """Create the seller; errors re-render the form inline (200, so htmx swaps it)."""
    values = _form_values(request.form)
    try:
        seller = create_seller(db.session, values, current_actor())
    except SellerInvalid as exc:
        db.session.rollback()
        return _form_page(None, values, exc.errors)
    flash(_("Seller %(name)s created.", name=seller.legal_name), "success")
    return redirect(url_for("admin.seller", seller_id=seller.public_id), code=303)


@bp.get("/sellers/<seller_id>")
@admin_view
def seller(seller_id: str):
    """Edit one seller: details, number formats, defaults and the logo."""
    record = load_seller(seller_id)
    return _form_page(record, {name: getattr(record, name) for name in SELLER_FIELDS})


@bp.post("/sellers/<seller_id>")
@admin_view
def update_seller_view(seller_id: str):
    """Save the seller's details (only invoices finalized afterwards show them)."""
    record = load_seller(seller_id)
    values = _form_values(request.form)
    try:
        update_seller(db.session, record, values, current_actor())
    except SellerInvalid as exc:
        db.session.rollback()
        return _form_page(load_seller(seller_id), values, exc.errors)
    flash(_("Seller %(name)s saved.", name=record.legal_name), "success")
    return redirect(url_for("admin.seller", seller_id=record.public_id), code=303)


@bp.post("/sellers/<seller_id>/logo")
@admin_view
def seller_logo(seller_id: str):
    """Upload (PNG or SVG, at most 512 KB; SVG sanitized) or remove the seller's logo."""
    record = load_seller(seller_id)
    if request.form.get("remove") == "yes":
        content = None
    else:
        upload = request.files.get("logo")
        content = b""
        if upload is not None:
            try:
                content = upload.read()
            finally:
                upload.close()  # a large upload is spooled to a temporary file
    try:
        set_seller_logo(db.session, record, content, current_actor())
    except SellerInvalid as exc:
        db.session.rollback()
        record = load_seller(seller_id)
        return _form_page(
            record, {name: getattr(record, name) for name in SELLER_FIELDS}, exc.errors
        )
    flash(_("Logo removed.") if content is None else _("Logo saved."), "success")
    return redirect(url_for("admin.seller", seller_id=record.public_id), code=303)
