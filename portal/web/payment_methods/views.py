"""Saved payment methods: list, default, removal."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from portal.db import load_for_tenant, utcnow
from portal.extensions import db
from portal.payments.methods import (
    PaymentMethodRefused,
    method_warning,
    remove_method,
    set_default_method,
    usable_methods,
)
from portal.payments.models import PaymentMethod
from portal.tenancy.models import Seller
from portal.web.guards import tenant_view
from portal.web.htmx import render_page

bp = Blueprint("payment_methods", __name__)


class ActionForm(FlaskForm):
    """Only the CSRF token; the method is in the URL."""


@bp.get("/payment-methods")
@tenant_view()
def index():
    """The tenant's methods with the default first, and how else to pay."""
    today = utcnow().date()
    methods = usable_methods(db.session, g.tenant)
    return render_page(
        "payment_methods/page.html",
        "payment_methods/_list.html",
        methods=[(m, method_warning(m, today)) for m in methods],
        seller=db.session.get(Seller, g.tenant.seller_id),
        form=ActionForm(),
    )


def _act(method_id: str, action, done_message: str):
    method = load_for_tenant(db.session, PaymentMethod, method_id, g.tenant)
    if ActionForm().validate_on_submit():
        try:
            action(db.session, g.tenant, method)
        except PaymentMethodRefused as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(done_message, "success")
    return redirect(url_for("payment_methods.index"), code=303)


@bp.post("/payment-methods/<method_id>/default")
@tenant_view("manage_billing")
def make_default(method_id: str):
    """Charge this method automatically from now on."""
    return _act(method_id, set_default_method, _("Default payment method changed."))


@bp.post("/payment-methods/<method_id>/remove")
@tenant_view("manage_billing")
def remove(method_id: str):
    """Remove a method; it is no longer charged."""
    return _act(method_id, remove_method, _("Payment method removed."))
