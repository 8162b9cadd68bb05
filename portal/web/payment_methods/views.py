"""Saved payment methods: list, add (Stripe.js or a provider's redirect), default, removal,
and completing a payment that the bank wants confirmed (3-D Secure)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from portal.db import load_for_tenant, utcnow
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments import collection
from portal.payments.methods import (
    PaymentMethodRefused,
    method_warning,
    remove_method,
    set_default_method,
    usable_methods,
)
from portal.payments.models import Payment, PaymentMethod, PaymentMethodStatus, PaymentStatus
from portal.payments.providers import (
    ConfirmsInBrowser,
    ProviderError,
    UnknownProvider,
    UnsupportedMethodType,
    configured_providers,
    get_provider,
)
from portal.payments.services import remove_payment_method
from portal.tenancy.models import Seller
from portal.web.guards import tenant_view
from portal.web.htmx import render_page

bp = Blueprint("payment_methods", __name__)


class ActionForm(FlaskForm):
    """Only the CSRF token; the method is in the URL."""


def _index():
    return redirect(url_for("payment_methods.index"), code=303)


@bp.get("/payment-methods")
@tenant_view()
def index():
    """The tenant's methods with the default first, how to add one, and how else to pay."""
    today = utcnow().date()
    methods = usable_methods(db.session, g.tenant)
    return render_page(
        "payment_methods/page.html",
        "payment_methods/_list.html",
        methods=[(m, method_warning(m, today)) for m in methods],
        seller=db.session.get(Seller, g.tenant.seller_id),
        providers=configured_providers(),
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
        except ProviderError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            flash(done_message, "success")
    return _index()


@bp.post("/payment-methods/<method_id>/default")
@tenant_view("manage_billing")
def make_default(method_id: str):
    """Charge this method automatically from now on."""
    return _act(method_id, set_default_method, _("Default payment method changed."))


@bp.post("/payment-methods/<method_id>/remove")
@tenant_view("manage_billing")
def remove(method_id: str):
    """Remove a method: it is kept for history, detached or revoked at the provider."""
    return _act(method_id, remove_payment_method, _("Payment method removed."))


@bp.post("/payment-methods/setup")
@tenant_view("manage_billing")
def setup():
    """Start adding a method: Stripe continues on our setup page, Mollie at its checkout."""
    if not ActionForm().validate_on_submit():
        return _index()
    try:
        provider = get_provider(request.form.get("provider", ""))
        result = provider.setup(db.session, g.tenant, request.form.get("method_type", ""), None)
    except (UnknownProvider, UnsupportedMethodType) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _index()
    except ProviderError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _index()
    if result.redirect_url:
        return redirect(result.redirect_url, code=303)
    return redirect(
        url_for("payment_methods.setup_page", method_id=result.method.public_id), code=303
    )


def _pending(method_id: str) -> PaymentMethod:
    method = load_for_tenant(db.session, PaymentMethod, method_id, g.tenant)
    if method.status != PaymentMethodStatus.PENDING:
        abort(404)
    return method


@bp.get("/payment-methods/<method_id>/setup")
@tenant_view("manage_billing")
def setup_page(method_id: str):
    """Collect the card or IBAN with Stripe.js and confirm the SetupIntent in the browser."""
    method = _pending(method_id)
    try:
        provider = get_provider(method.provider)
        if not isinstance(provider, ConfirmsInBrowser):  # confirmed at its own checkout
            abort(404)
        client_secret = provider.client_secret(method)
    except UnknownProvider:
        abort(404)
    except ProviderError as exc:
        flash(exc.message, "error")
        return _index()
    return render_page(
        "payment_methods/setup.html",
        method=method,
        client_secret=client_secret,
        stripe=provider.frontend_config(),
        fake_stripe=bool(provider.setting("STRIPE_API_BASE")),
        form=ActionForm(),
    )


def _confirm(method: PaymentMethod, data: dict):
    try:
        provider = get_provider(method.provider)
        provider.confirm(db.session, g.tenant, data)
    except UnknownProvider:
        abort(404)
    except ProviderError as exc:
        db.session.rollback()
        if exc.code == "setup_failed":
            remove_method(db.session, g.tenant, method)
            flash(exc.message, "error")
        elif exc.code == "not_confirmed":
            flash(_("The payment method will appear once the provider confirms it."), "info")
        else:
            flash(exc.message, "error")
        return _index()
    flash(_("Payment method added."), "success")
    return _index()


@bp.post("/payment-methods/<method_id>/confirm")
@tenant_view("manage_billing")
def confirm(method_id: str):
    """After Stripe.js confirmed the setup in the browser: activate the method."""
    method = load_for_tenant(db.session, PaymentMethod, method_id, g.tenant)
    if not ActionForm().validate_on_submit():
        return _index()
    if method.status != PaymentMethodStatus.PENDING:
        return _index()
    return _confirm(method, {"setup_intent_id": method.setup_ref})


@bp.get("/payment-methods/<method_id>/return")
@tenant_view("manage_billing")
def setup_return(method_id: str):
    """Where a provider's checkout sends the browser back; confirms like the webhook does."""
    method = load_for_tenant(db.session, PaymentMethod, method_id, g.tenant)
    if method.status != PaymentMethodStatus.PENDING:
        flash(_("Payment method added."), "success")
        return _index()
    return _confirm(method, {"payment_method_id": str(method.public_id)})


@bp.get("/payment-methods/payments/<payment_id>")
@tenant_view("manage_billing")
def payment_action(payment_id: str):
    """The page an e-mail links to when the bank wants a payment confirmed (3-D Secure)."""
    payment = load_for_tenant(db.session, Payment, payment_id, g.tenant)
    invoice = db.session.get(Invoice, payment.invoice_id)
    client_secret = None
    provider = None
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        try:
            provider = get_provider(payment.provider)
            client_secret = (
                provider.payment_client_secret(payment)
                if isinstance(provider, ConfirmsInBrowser)
                else None
            )
        except (UnknownProvider, ProviderError):
            client_secret = None
    return render_page(
        "payment_methods/payment_action.html",
        payment=payment,
        invoice=invoice,
        client_secret=client_secret,
        stripe=provider.frontend_config() if provider else None,
        form=ActionForm(),
    )


@bp.post("/payment-methods/payments/<payment_id>/complete")
@tenant_view("manage_billing")
def payment_complete(payment_id: str):
    """After the tenant confirmed in the browser: read the payment's status back."""
    payment = load_for_tenant(db.session, Payment, payment_id, g.tenant)
    if ActionForm().validate_on_submit() and payment.status == PaymentStatus.REQUIRES_ACTION:
        try:
            provider = get_provider(payment.provider)
            if not isinstance(provider, ConfirmsInBrowser):
                abort(404)
            provider.refresh_payment(db.session, payment)
            collection.payment_updated(db.session, payment)
        except UnknownProvider:
            abort(404)
        except ProviderError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            if payment.status == PaymentStatus.SUCCEEDED:
                flash(_("Thank you: the payment succeeded."), "success")
            else:
                flash(_("The payment was not confirmed."), "error")
    return redirect(url_for("payment_methods.payment_action", payment_id=payment_id), code=303)
