"""The page a signed link opens: one invoice, its documents and "pay now", without a login.

Everything is reached through the token: the invoice comes from the link row, never from
the URL or the session, so a link shows its invoice and nothing else of the tenant. A
tampered or unknown token answers 404 and an expired or revoked one 410, both with a page
that shows no invoice data. Each route is rate limited per client address.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy.orm import selectinload

from portal.documents.formats import FORMATS
from portal.documents.pdf import (
    VAT_CATEGORY_LABELS,
    country_name,
    document_rows,
    format_quantity,
    format_rate,
    format_unit_price,
)
from portal.extensions import db, limiter
from portal.invoices.models import Invoice
from portal.invoices.queries import invoice_parties
from portal.notifications.links import LinkUnusable, resolve_link
from portal.notifications.models import SignedLink
from portal.notifications.public_payments import finish_checkout, pay_now, pay_options
from portal.payments.providers import ProviderError
from portal.web.downloads import send_invoice_document
from portal.web.htmx import render_page

bp = Blueprint("public", __name__)


class PayForm(FlaskForm):
    """Only the CSRF token; the invoice is the link's."""


def _link_limit() -> str:
    return current_app.config["RATELIMIT_SIGNED_LINKS"]


def _no_store(response):
    """Invoice pages of a link must not stay in shared caches or leak through Referer."""
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _unusable(error: LinkUnusable):
    """The friendly page for a link that opens nothing: no invoice, no tenant, no data."""
    response = render_page("public/unavailable.html", reason=error.reason)
    response.status_code = error.status
    return _no_store(response)


@bp.errorhandler(429)
def _too_many(error):
    """Too many requests: the public page's own answer, with no way into the portal."""
    response = render_page("public/unavailable.html", reason="busy")
    response.status_code = 429
    return _no_store(response)


def _open(token: str, action: str) -> tuple[SignedLink, Invoice]:
    link, invoice = resolve_link(db.session, token, action)
    db.session.commit()  # keep last_used_at even when the action fails later
    return link, invoice


def _formatting(locale: str) -> dict:
    return {
        "fmt_quantity": lambda value: format_quantity(value, locale),
        "fmt_unit_price": lambda value, currency: format_unit_price(value, currency, locale),
        "fmt_rate": lambda value: format_rate(value, locale),
        "country_name": lambda code: country_name(code, locale),
        "vat_labels": VAT_CATEGORY_LABELS,
    }


@bp.get("/i/<token>")
@limiter.limit(_link_limit)
def show(token: str):
    """The invoice of a signed link: parties, lines, totals, status, downloads, pay now."""
    try:
        _link, invoice = _open(token, "view")
    except LinkUnusable as exc:
        return _unusable(exc)
    invoice = db.session.scalars(
        sa.select(Invoice)
        .where(Invoice.id == invoice.id)
        .options(
            selectinload(Invoice.lines),
            selectinload(Invoice.vat_breakdown),
            selectinload(Invoice.allowance_charges),
        )
    ).one()
    seller, buyer = invoice_parties(db.session, invoice)
    locale = invoice.language or "en"
    with force_locale(locale):
        response = render_page(
            "public/invoice.html",
            token=token,
            invoice=invoice,
            rows=document_rows(invoice),
            seller=seller,
            buyer=buyer,
            page_locale=locale,
            today=dt.date.today(),
            einvoice_formats=[f for f in FORMATS.values() if f.is_einvoice],
            pay=pay_options(db.session, invoice),
            pay_form=PayForm(),
            **_formatting(locale),
        )
    return _no_store(response)


@bp.get("/i/<token>/download")
@limiter.limit(_link_limit)
def download(token: str):
    """A document of the link's invoice (``?format=pdf`` by default): the stored bytes."""
    try:
        _link, invoice = _open(token, "download")
    except LinkUnusable as exc:
        return _unusable(exc)
    response = send_invoice_document(
        invoice, request.args.get("format", "pdf"), back_to=url_for("public.show", token=token)
    )
    return _no_store(response)


@bp.post("/i/<token>/pay")
@limiter.limit(_link_limit)
def pay(token: str):
    """Pay the link's invoice: charge the saved method, or go to the provider's checkout."""
    try:
        _link, invoice = _open(token, "pay")
    except LinkUnusable as exc:
        return _unusable(exc)
    target = url_for("public.show", token=token)
    if not PayForm().validate_on_submit():
        flash(_("The form expired. Reload the page and try again."), "error")
        return redirect(target, code=303)
    return_url = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for(
        "public.pay_return", token=token
    )
    try:
        outcome = pay_now(db.session, invoice, return_url)
    except ProviderError as exc:
        db.session.rollback()
        current_app.logger.warning("pay now for invoice %s failed: %s", invoice.id, exc)
        flash(_("The payment provider did not answer. Please try again later."), "error")
        return redirect(target, code=303)
    if outcome.redirect_url:
        return redirect(outcome.redirect_url, code=303)
    with force_locale(invoice.language or "en"):
        _flash_outcome(outcome.status, outcome.message)
    return redirect(target, code=303)


@bp.get("/i/<token>/pay/return")
@limiter.limit(_link_limit)
def pay_return(token: str):
    """Where the provider's checkout sends the payer back: confirm the method, then charge."""
    try:
        _link, invoice = _open(token, "pay")
    except LinkUnusable as exc:
        return _unusable(exc)
    try:
        outcome = finish_checkout(db.session, invoice)
    except ProviderError as exc:
        db.session.rollback()
        flash(
            _("The payment was not completed.")
            if exc.code in ("not_found", "setup_failed", "not_confirmed")
            else _("The payment provider did not answer. Please try again later."),
            "error",
        )
        return redirect(url_for("public.show", token=token), code=303)
    with force_locale(invoice.language or "en"):
        _flash_outcome(outcome.status, outcome.message)
    return redirect(url_for("public.show", token=token), code=303)


def _flash_outcome(status: str, message: str | None) -> None:
    if status == "succeeded":
        flash(_("Thank you: the invoice is paid."), "success")
    elif status in ("pending", "requires_action"):
        flash(_("Your payment is being processed."), "info")
    elif status == "failed":
        text = _("The payment failed.")
        flash(f"{text} {message}" if message else text, "error")
    else:
        flash(_("Nothing is left to pay on this invoice."), "info")
