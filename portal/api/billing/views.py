"""The tenant billing API: the 17 operations of tenant-billing-api.txt under /api/v1/billing.

Each view authorizes through its declaration (a tenant token with billing:read or
billing:write), calls the same services as the pages and answers with a model from
:mod:`portal.api.billing.schemas`; :mod:`portal.api.core` wraps it in ``{data, meta}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io

from flask import current_app, g, redirect, request, send_file
from werkzeug.exceptions import NotFound

from portal.api.billing import serializers as out
from portal.api.billing.schemas import (
    ApiResponse,
    BillingOverviewResponse,
    BillingProfileCreateUpdate,
    BillingProfileResponse,
    DownloadQuery,
    InvoiceListQuery,
    InvoiceResponse,
    PaginatedResponse,
    PaymentMethodCreateRequest,
    PaymentMethodResponse,
    PaymentProviderConfirmRequest,
    PaymentProviderResponse,
    PaymentProviderSetupRequest,
    SendInvoiceResult,
    UpcomingInvoiceResponse,
)
from portal.api.core import Api, ApiError, envelope, error_entry, not_found
from portal.api.openapi import register_docs
from portal.db import load_for_tenant, utcnow
from portal.extensions import db, limiter
from portal.invoices.estimates import estimate
from portal.invoices.models import Invoice
from portal.invoices.queries import (
    InvoiceFilter,
    drafts_visible,
    list_invoices,
    load_invoice,
    open_amounts,
    recent_invoices,
)
from portal.invoices.spend import monthly_spend
from portal.invoices.states import InvoiceStatus
from portal.notifications.delivery import InvoiceNotSendable, send_invoice
from portal.payments.methods import (
    PaymentMethodRefused,
    default_method,
    set_default_method,
    usable_methods,
)
from portal.payments.models import PaymentMethod
from portal.tenancy.profiles import (
    ProfileInput,
    ProfileInvalid,
    get_billing_profile,
    upsert_billing_profile,
)
from portal.urls import url_builder
from portal.usage.queries import quota_usage_report

api = Api("api_billing", __name__, "/api/v1/billing", title="Tenant billing API", area="billing")
bp = api.blueprint


def _token_key() -> str:
    """Rate-limit bucket: the bearer token sent (hashed), else the client address.

    Limits are checked before the view authenticates, so the header itself is the key.
    """
    header = request.headers.get("Authorization", "")
    if header:
        return "token:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    return "ip:" + (request.remote_addr or "")


limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=_token_key)(bp)


def _tenant():
    return g.api_token.tenant


def _invoice(invoice_id: str) -> Invoice:
    try:
        return load_invoice(db.session, _tenant(), invoice_id)
    except NotFound:
        raise not_found("invoice_id", "Invoice") from None


def _method(method_id: str) -> PaymentMethod:
    try:
        return load_for_tenant(db.session, PaymentMethod, method_id, _tenant())
    except NotFound:
        raise not_found("method_id", "Payment method") from None


# --- Billing profile -----------------------------------------------------------------------


@api.operation(
    "GET",
    "/billing-profile",
    "Get Billing Profile",
    response=ApiResponse[BillingProfileResponse | None],
    tags=["Billing profile"],
)
def get_billing_profile_op():
    """Get the billing profile for the authenticated tenant; ``data`` is null without one."""
    profile = get_billing_profile(db.session, _tenant())
    return out.profile(profile) if profile else None


@api.operation(
    "PUT",
    "/billing-profile",
    "Upsert Billing Profile",
    body=BillingProfileCreateUpdate,
    response=ApiResponse[BillingProfileResponse],
    scope="write",
    tags=["Billing profile"],
)
def upsert_billing_profile_op(body: BillingProfileCreateUpdate):
    """Create or update the billing profile for the authenticated tenant.

    The body is the whole profile (PUT replaces it); the same rules as the portal's form
    apply, and a rejected body writes nothing.
    """
    data = ProfileInput(**body.model_dump(mode="json"))
    try:
        profile = upsert_billing_profile(
            db.session, _tenant(), data, languages=current_app.config["LANGUAGES"]
        )
    except ProfileInvalid as exc:
        db.session.rollback()
        raise ApiError(
            422,
            [error_entry(["body", name], msg, "value_error") for name, msg in exc.errors.items()],
        ) from None
    db.session.commit()
    return out.profile(profile)


# --- Invoices ------------------------------------------------------------------------------


@api.operation(
    "GET",
    "/invoices",
    "List Invoices",
    query=InvoiceListQuery,
    response=PaginatedResponse[InvoiceResponse],
    tags=["Invoices"],
)
def list_invoices_op(query: InvoiceListQuery):
    """List invoices for the authenticated tenant, newest first (ties by id, stable)."""
    tenant = _tenant()
    if query.status == "draft" and not drafts_visible(db.session, tenant):
        raise ApiError(
            422,
            [
                error_entry(
                    ["query", "status"], "Drafts are not shown to tenants.", "invalid_choice"
                )
            ],
        )
    today = dt.date.today()
    page = list_invoices(
        db.session,
        tenant,
        InvoiceFilter(status=query.status),
        query.page,
        query.page_size,
        today=today,
        past_end="empty",
    )
    pdf_url = url_builder("api_billing.download_invoice_pdf_op", "invoice_id")
    return envelope(
        [out.invoice(invoice, today, pdf_url=pdf_url) for invoice in page.items],
        pagination={
            "page": page.page,
            "page_size": page.page_size,
            "total": page.total,
            "pages": page.pages,
        },
    )


@api.operation(
    "GET",
    "/invoices/<invoice_id>",
    "Get Invoice",
    response=ApiResponse[InvoiceResponse],
    tags=["Invoices"],
    errors=(404,),
)
def get_invoice_op(invoice_id: str):
    """Get invoice detail with line items, VAT breakdown and allowances or charges."""
    return out.invoice(_invoice(invoice_id), dt.date.today(), detail=True)


@api.operation(
    "GET",
    "/invoices/<invoice_id>/download",
    "Download Invoice Einvoice",
    query=DownloadQuery,
    files=("application/pdf", "application/xml"),
    tags=["Invoices"],
    errors=(404,),
)
def download_invoice_op(invoice_id: str, query: DownloadQuery):
    """Download the invoice in one format: pdf, ubl (Peppol BIS 3.0), xrechnung, cii, or
    zugferd / facturx (PDF/A-3 with the CII XML embedded).

    An issued document is rendered once and stored: every download returns the same bytes.
    """
    from portal.documents.formats import DocumentNotAvailable, UnknownFormat, render_document

    invoice = _invoice(invoice_id)
    try:
        document = render_document(db.session, invoice, query.format.lower(), invoice.language)
    except UnknownFormat as exc:
        raise ApiError(
            422,
            [
                error_entry(
                    ["query", "format"],
                    f"Unknown format; use one of: {', '.join(exc.supported)}.",
                    "invalid_choice",
                    supported=list(exc.supported),
                )
            ],
        ) from None
    except DocumentNotAvailable as exc:
        raise ApiError(
            422, [error_entry(["query", "format"], exc.reason, "not_available")]
        ) from None
    db.session.commit()
    return _file(document.content, document.media_type, document.filename)


@api.operation(
    "GET",
    "/invoices/<invoice_id>/pdf",
    "Download Invoice Pdf",
    files=("application/pdf",),
    tags=["Invoices"],
    errors=(404,),
    redirects=True,
)
def download_invoice_pdf_op(invoice_id: str):
    """Download the invoice as PDF; redirects to a pre-generated ``pdf_url`` when one exists."""
    from portal.documents.formats import render_document

    invoice = _invoice(invoice_id)
    if invoice.pdf_url and invoice.status != InvoiceStatus.DRAFT:
        return redirect(invoice.pdf_url)
    document = render_document(db.session, invoice, "pdf", invoice.language)
    db.session.commit()
    return _file(document.content, document.media_type, document.filename)


def _file(content: bytes, media_type: str, filename: str):
    response = send_file(
        io.BytesIO(content),
        mimetype=media_type,
        as_attachment=True,
        download_name=filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


_NOT_SENDABLE = {
    "draft": "A draft cannot be sent; it is sent once the seller finalizes it.",
    "closed": "This invoice is paid, void or written off; there is nothing to send.",
    "no_recipient": "The billing profile has no billing e-mail address; add one first.",
    "einvoice_unavailable": "The e-invoice the billing profile asks for cannot be made:",
}


@api.operation(
    "POST",
    "/invoices/<invoice_id>/send",
    "Send Invoice Email",
    response=ApiResponse[SendInvoiceResult],
    scope="write",
    tags=["Invoices"],
    errors=(404,),
)
def send_invoice_op(invoice_id: str):
    """E-mail the invoice to the billing contact (and the cc list) with its PDF attached,
    plus the structured e-invoice the billing profile prefers. A finalized invoice becomes
    sent; a sent one is sent again; other states are refused with 422.
    """
    invoice = _invoice(invoice_id)
    try:
        email = send_invoice(db.session, invoice)
    except InvoiceNotSendable as exc:
        db.session.rollback()
        raise ApiError(
            422,
            [
                error_entry(
                    ["path", "invoice_id"],
                    " ".join(filter(None, [_NOT_SENDABLE[exc.reason], exc.detail])),
                    f"not_sendable.{exc.reason}",
                )
            ],
        ) from None
    db.session.commit()
    return SendInvoiceResult(
        invoice_id=str(invoice.public_id),
        status=invoice.status.value,
        to=list(email.to_addrs),
        cc=list(email.cc_addrs),
        attachments=[a.get("filename") or a.get("kind", "") for a in email.attachments or []],
    )


# --- Overview and upcoming -----------------------------------------------------------------


@api.operation(
    "GET",
    "/overview",
    "Get Billing Overview",
    response=ApiResponse[BillingOverviewResponse],
    tags=["Overview"],
)
def overview_op():
    """Billing summary: open and overdue amounts, the next billing date with the estimate,
    the default payment method, the latest invoices and the spend of the last 12 months —
    the figures of the portal's overview page.
    """
    tenant = _tenant()
    now = utcnow()
    today = now.date()
    return out.overview(
        tenant,
        amounts=open_amounts(db.session, tenant, today),
        upcoming=estimate(db.session, tenant, now),
        payment_method=default_method(db.session, tenant),
        invoices=recent_invoices(db.session, tenant),
        spend=monthly_spend(db.session, tenant, today),
        today=today,
    )


@api.operation(
    "GET",
    "/upcoming",
    "Get Upcoming Invoice",
    response=ApiResponse[UpcomingInvoiceResponse | None],
    tags=["Overview"],
)
def upcoming_op():
    """Estimate the next invoice from current subscription prices and month-to-date usage,
    projected to the period end; ``data`` is null without an active subscription.
    """
    tenant = _tenant()
    now = utcnow()
    result = estimate(db.session, tenant, now)
    if result is None:
        return None
    start = dt.datetime.combine(result.period_start, dt.time(), tzinfo=dt.UTC)
    quotas = quota_usage_report(db.session, [tenant.id], start, now)
    return out.upcoming(tenant, result, quotas)


# --- Payment methods -----------------------------------------------------------------------


@api.operation(
    "GET",
    "/payment-methods",
    "List Payment Methods",
    response=ApiResponse[list[PaymentMethodResponse]],
    tags=["Payment methods"],
)
def list_payment_methods_op():
    """Active and pending payment methods, the default first."""
    today = dt.date.today()
    return [out.method(m, today) for m in usable_methods(db.session, _tenant())]


@api.operation(
    "POST",
    "/payment-methods",
    "Add Payment Method",
    body=PaymentMethodCreateRequest,
    response=ApiResponse[PaymentMethodResponse],
    status=201,
    scope="write",
    tags=["Payment methods"],
    errors=(502,),
)
def add_payment_method_op(body: PaymentMethodCreateRequest):
    """Start adding a payment method with a provider: the method is created pending, and
    ``next_action`` carries the Stripe.js client secret or the provider's redirect URL.
    It becomes active on confirmation or the provider's webhook.
    """
    result = _setup(
        body.provider_slug, body.method_type, body.return_url, loc="provider_slug", where="body"
    )
    return out.method(result.method, dt.date.today(), next_action=_next_action(result))


@api.operation(
    "DELETE",
    "/payment-methods/<method_id>",
    "Delete Payment Method",
    response=ApiResponse[PaymentMethodResponse],
    scope="write",
    tags=["Payment methods"],
    errors=(404, 502),
)
def delete_payment_method_op(method_id: str):
    """Deactivate a payment method (its history stays) and detach it at the provider."""
    from portal.payments.providers import ProviderError
    from portal.payments.services import remove_payment_method

    method = _method(method_id)
    try:
        remove_payment_method(db.session, _tenant(), method)
    except PaymentMethodRefused as exc:
        db.session.rollback()
        raise ApiError(
            422, [error_entry(["path", "method_id"], str(exc), "invalid_state")]
        ) from None
    except ProviderError as exc:
        db.session.rollback()
        raise _provider_failure(exc, ["path", "method_id"]) from None
    db.session.commit()
    return out.method(method, dt.date.today())


@api.operation(
    "POST",
    "/payment-methods/<method_id>/default",
    "Set Default Payment Method",
    response=ApiResponse[PaymentMethodResponse],
    scope="write",
    tags=["Payment methods"],
    errors=(404,),
)
def set_default_payment_method_op(method_id: str):
    """Make an active method the one charged for new invoices."""
    method = _method(method_id)
    try:
        set_default_method(db.session, _tenant(), method)
    except PaymentMethodRefused as exc:
        db.session.rollback()
        raise ApiError(
            422, [error_entry(["path", "method_id"], str(exc), "invalid_state")]
        ) from None
    db.session.commit()
    return out.method(method, dt.date.today())


# --- Payment providers ---------------------------------------------------------------------


@api.operation(
    "GET",
    "/payment-providers",
    "List Payment Providers",
    response=ApiResponse[list[PaymentProviderResponse]],
    scope=None,
    tags=["Payment providers"],
)
def list_payment_providers_op():
    """The configured payment providers and the method types each supports (public)."""
    from portal.payments.providers import configured_providers

    return [out.provider(p) for p in configured_providers()]


@api.operation(
    "GET",
    "/payment-providers/<slug>/config",
    "Get Provider Config",
    response=ApiResponse[dict],
    scope=None,
    tags=["Payment providers"],
    errors=(404,),
)
def provider_config_op(slug: str):
    """Public front-end configuration of a provider (e.g. Stripe's publishable key and the
    Stripe.js URL); never a secret.
    """
    return _provider(slug, loc=["path", "slug"]).frontend_config()


@api.operation(
    "POST",
    "/payment-providers/<slug>/setup",
    "Setup Provider Payment Method",
    body=PaymentProviderSetupRequest,
    response=ApiResponse[dict],
    scope="write",
    tags=["Payment providers"],
    errors=(404, 502),
)
def provider_setup_op(slug: str, body: PaymentProviderSetupRequest):
    """Start setting up a method: Stripe answers a ``client_secret`` for Stripe.js, redirect
    providers (Mollie) a ``redirect_url``; both with the pending ``payment_method_id``.
    """
    result = _setup(slug, body.method_type, body.return_url, loc="slug", where="path")
    return result.as_dict()


@api.operation(
    "POST",
    "/payment-providers/<slug>/confirm",
    "Confirm Provider Payment Method",
    body=PaymentProviderConfirmRequest,
    response=ApiResponse[PaymentMethodResponse],
    scope="write",
    tags=["Payment providers"],
    errors=(404, 502),
)
def provider_confirm_op(slug: str, body: PaymentProviderConfirmRequest):
    """Confirm a method after Stripe.js confirmation or the redirect back from the provider.
    Idempotent with the provider's webhook: whichever comes first activates the method.
    """
    from portal.payments.providers import ProviderError

    provider = _provider(slug, loc=["path", "slug"])
    try:
        method = provider.confirm(db.session, _tenant(), body.confirmation_data)
    except ProviderError as exc:
        db.session.rollback()
        raise _provider_failure(exc, ["body", "confirmation_data"]) from None
    db.session.commit()
    return out.method(method, dt.date.today())


def _provider(slug: str, loc: list[str]):
    """The configured provider ``slug``: unknown in the path is 404, in a body 422."""
    from portal.payments.providers import UnknownProvider, get_provider

    try:
        return get_provider(slug)
    except UnknownProvider:
        in_path = loc[0] == "path"
        raise ApiError(
            404 if in_path else 422,
            [
                error_entry(
                    loc,
                    "No payment provider of that name is configured.",
                    "not_found" if in_path else "invalid_choice",
                )
            ],
        ) from None


def _setup(slug: str, method_type: str, return_url: str | None, *, loc: str, where: str):
    from portal.payments.providers import ProviderError, UnsupportedMethodType

    provider = _provider(slug, loc=[where, loc])
    try:
        result = provider.setup(db.session, _tenant(), method_type, return_url)
    except UnsupportedMethodType as exc:
        db.session.rollback()
        raise ApiError(
            422, [error_entry(["body", "method_type"], str(exc), "invalid_choice")]
        ) from None
    except ProviderError as exc:
        db.session.rollback()
        field = "return_url" if "return" in _code(exc) else "method_type"
        raise _provider_failure(exc, ["body", field]) from None
    db.session.commit()
    return result


def _code(exc: Exception) -> str:
    return str(getattr(exc, "code", "") or "provider_error")


def _provider_failure(exc: Exception, loc: list[str]) -> ApiError:
    """A provider's refusal in the error shape: unknown setups 404, an unreachable provider
    502, anything else (declined, not confirmed, bad input) 422."""
    code = _code(exc)
    status = {"not_found": 404, "provider_unavailable": 502}.get(code, 422)
    return ApiError(status, [error_entry(loc, str(exc), code)])


def _next_action(result) -> dict | None:
    data = {k: v for k, v in result.as_dict().items() if k in ("client_secret", "redirect_url")}
    return {k: v for k, v in data.items() if v} or None


register_docs(api)
