"""The tenant billing API: the 17 operations of tenant-billing-api.txt under /api/v1/billing.

Each view authorizes through its declaration (a tenant token with billing:read or
billing:write), calls the same services as the pages and answers with a model from
:mod:`portal.api.billing.schemas`; :mod:`portal.api.core` wraps it in ``{data, meta}``.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, g, redirect
from werkzeug.exceptions import NotFound

from portal.api.billing import serializers as out
from portal.api.billing.errors import ERRORS, provider_failure, setup_failure, unknown_provider
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
from portal.api.billing.subscription_schemas import SUBSCRIPTION_BODIES
from portal.api.core import Api, ApiError, envelope, error_entry, file_response, not_found
from portal.api.openapi import DocExtras, register_docs
from portal.db import load_for_tenant, utcnow
from portal.documents.formats import render_document
from portal.extensions import db
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
from portal.notifications.delivery import send_invoice
from portal.payments.methods import (
    default_method,
    set_default_method,
    usable_methods,
)
from portal.payments.models import PaymentMethod
from portal.payments.providers import (
    ProviderError,
    UnknownProvider,
    configured_providers,
    get_provider,
)
from portal.payments.services import remove_payment_method
from portal.tenancy.profiles import (
    ProfileInput,
    get_billing_profile,
    upsert_billing_profile,
)
from portal.urls import url_builder
from portal.usage.queries import quota_usage_report

api = Api(
    "api_billing",
    __name__,
    "/api/v1/billing",
    title="Tenant billing API",
    area="billing",
    errors=ERRORS,
)
bp = api.blueprint


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
    profile = upsert_billing_profile(
        db.session, _tenant(), data, languages=current_app.config["LANGUAGES"]
    )
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
    invoice = _invoice(invoice_id)
    document = render_document(db.session, invoice, query.format.lower(), invoice.language)
    return file_response(document.content, document.media_type, document.filename)


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
    invoice = _invoice(invoice_id)
    if invoice.pdf_url and invoice.status != InvoiceStatus.DRAFT:
        return redirect(invoice.pdf_url)
    document = render_document(db.session, invoice, "pdf", invoice.language)
    return file_response(document.content, document.media_type, document.filename)


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
    email = send_invoice(db.session, invoice)
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
    raises={
        UnknownProvider: unknown_provider("body", "provider_slug"),
        ProviderError: setup_failure,
    },
)
def add_payment_method_op(body: PaymentMethodCreateRequest):
    """Start adding a payment method with a provider: the method is created pending, and
    ``next_action`` carries the Stripe.js client secret or the provider's redirect URL.
    It becomes active on confirmation or the provider's webhook.
    """
    provider = get_provider(body.provider_slug)
    result = provider.setup(db.session, _tenant(), body.method_type, body.return_url)
    return out.method(result.method, dt.date.today(), next_action=_next_action(result))


@api.operation(
    "DELETE",
    "/payment-methods/<method_id>",
    "Delete Payment Method",
    response=ApiResponse[PaymentMethodResponse],
    scope="write",
    tags=["Payment methods"],
    errors=(404, 502),
    raises={ProviderError: provider_failure("path", "method_id")},
)
def delete_payment_method_op(method_id: str):
    """Deactivate a payment method (its history stays) and detach it at the provider."""
    method = _method(method_id)
    remove_payment_method(db.session, _tenant(), method)
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
    set_default_method(db.session, _tenant(), method)
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
    return get_provider(slug).frontend_config()


@api.operation(
    "POST",
    "/payment-providers/<slug>/setup",
    "Setup Provider Payment Method",
    body=PaymentProviderSetupRequest,
    response=ApiResponse[dict],
    scope="write",
    tags=["Payment providers"],
    errors=(404, 502),
    raises={ProviderError: setup_failure},
)
def provider_setup_op(slug: str, body: PaymentProviderSetupRequest):
    """Start setting up a method: Stripe answers a ``client_secret`` for Stripe.js, redirect
    providers (Mollie) a ``redirect_url``; both with the pending ``payment_method_id``.
    """
    result = get_provider(slug).setup(db.session, _tenant(), body.method_type, body.return_url)
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
    raises={ProviderError: provider_failure("body", "confirmation_data")},
)
def provider_confirm_op(slug: str, body: PaymentProviderConfirmRequest):
    """Confirm a method after Stripe.js confirmation or the redirect back from the provider.
    Idempotent with the provider's webhook: whichever comes first activates the method.
    """
    method = get_provider(slug).confirm(db.session, _tenant(), body.confirmation_data)
    return out.method(method, dt.date.today())


def _next_action(result) -> dict | None:
    data = {k: v for k, v in result.as_dict().items() if k in ("client_secret", "redirect_url")}
    return {k: v for k, v in data.items() if v} or None


# The subscription operations (subscriptions.py, declared on this surface) read their
# bodies after finding the subscription, so the document learns the bodies from here.
register_docs(api, DocExtras(bodies=SUBSCRIPTION_BODIES))
