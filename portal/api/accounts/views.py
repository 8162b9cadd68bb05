"""The account billing API under /api/v1/organizations/<orgId>/accounts/<accountId>/...

For the operator's machines: an admin API token (``flask create-token --admin``) with
``admin:read`` (and ``admin:write`` for changes). ``orgId`` is the seller's public id,
``accountId`` a tenant's public id; a tenant of another seller answers 404 like an unknown
one. Answers are the reference's DTOs as they are (no envelope); every error is a
GenericResponseDTO, with validation errors as 400, an unreachable payment provider as 502
and a provider timeout as 504.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from portal.api.accounts import serializers as out
from portal.api.accounts.envelope import account_status, dto_envelope, generic_error_body
from portal.api.accounts.errors import ERRORS, LOCATION_TAX_ERRORS
from portal.api.accounts.reads import current_subscription, movement_page
from portal.api.accounts.schemas import (
    AccountBillingDetailsResponse,
    BillingInfoResponse,
    BillingInfoUpdate,
    ConsumptionCreate,
    ConsumptionListQuery,
    ConsumptionListResponse,
    ConsumptionResponse,
    GenericResponse,
    InvoicePublicLinkResponse,
    ListQuery,
    LocationTaxQuery,
    LocationTaxResponse,
    MovementListResponse,
    RefundCreate,
    RefundListResponse,
    RefundResponse,
)
from portal.api.core import Api, ApiError, error_entry, not_found
from portal.api.openapi import register_docs
from portal.domain import tax
from portal.domain.money import Money
from portal.extensions import db
from portal.invoices.queries import find_invoice, invoice_public_ids
from portal.invoices.states import InvoiceStatus
from portal.ledger.services import balance
from portal.notifications.links import link_url, shared_link
from portal.payments.models import Payment
from portal.payments.providers import UnknownProvider, get_provider
from portal.payments.queries import payment_public_ids, refund_page, refundable_payment
from portal.payments.refunds import refund_payment, refundable_minor
from portal.tenancy.models import Tenant
from portal.tenancy.profiles import ProfileInput, get_billing_profile, upsert_billing_profile
from portal.tenancy.queries import seller_by_public_id, seller_tenant, stored_company_settings
from portal.usage.queries import consumption_page
from portal.usage.services import record_consumption

api = Api(
    "api_accounts",
    __name__,
    "/api/v1/organizations",
    title="Account billing API",
    area="admin",
    error_body=generic_error_body,
    error_status=account_status,
    envelope=dto_envelope,
    error_schema=GenericResponse,
    errors=ERRORS,
)
bp = api.blueprint
#: The part of every path before the operation's own.
ACCOUNT = "/<orgId>/accounts/<accountId>"
#: Errors every account operation may answer besides 401/403/429 (added by the machinery).
COMMON_ERRORS = (400, 404, 500)
PROVIDER_ERRORS = (*COMMON_ERRORS, 502, 504)


def _account(org_id: str, account_id: str) -> Tenant:
    """The tenant ``account_id`` of the seller ``org_id``; 404 for anything else."""
    seller = seller_by_public_id(db.session, org_id)
    if seller is None:
        raise not_found("orgId", "Organization")
    tenant = seller_tenant(db.session, seller, account_id)
    if tenant is None:
        raise not_found("accountId", "Account")
    return tenant


def _invoice(tenant: Tenant, invoice_id: str, name: str = "invoiceId", where: str = "path"):
    invoice = find_invoice(db.session, invoice_id, tenant)
    if invoice is None:
        raise ApiError(404, [error_entry([where, name], "Invoice not found.", "not_found")])
    return invoice


def _as_utc(value: dt.datetime, field: str = "occurredAt", where: str = "body") -> dt.datetime:
    """A client's timestamp in UTC; one without a zone is taken as UTC.

    :raise ApiError: 400 for a time that has no UTC equivalent (e.g. year 1 at +01:00).
    """
    try:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ApiError(
            400, [error_entry([where, field], "The time is out of range.", "datetime_range")]
        ) from None


def _refund_provider(payment: Payment):
    """The provider that refunds ``payment``; 502 when it is not configured here."""
    try:
        return get_provider(payment.provider)
    except UnknownProvider:
        raise ApiError(
            502,
            [
                error_entry(
                    ["provider"],
                    f"The payment provider {payment.provider!r} is not configured here.",
                    "not_configured",
                )
            ],
        ) from None


# --- Invoices ------------------------------------------------------------------------------


@api.operation(
    "GET",
    ACCOUNT + "/invoices/<invoiceId>/public-link",
    "Retrieve an account invoice's public link",
    response=InvoicePublicLinkResponse,
    tags=["Invoices"],
    errors=COMMON_ERRORS,
)
def get_invoice_public_link(orgId: str, accountId: str, invoiceId: str):
    """A signed link to the invoice for its billing contact: no login, this invoice only.

    The same URL is given again while it has at least half its lifetime left; drafts have
    no public link (404).
    """
    tenant = _account(orgId, accountId)
    invoice = _invoice(tenant, invoiceId)
    if invoice.status == InvoiceStatus.DRAFT:
        raise not_found("invoiceId", "Issued invoice")
    link = shared_link(db.session, invoice)
    return InvoicePublicLinkResponse(
        invoice_id=str(invoice.public_id),
        invoice_number=invoice.number or "",
        url=link_url(link),
        expires_at=link.expires_at,
    )


@api.operation(
    "GET",
    ACCOUNT + "/billing-details",
    "Account next billing date",
    response=AccountBillingDetailsResponse,
    tags=["Invoices"],
    errors=COMMON_ERRORS,
)
def get_account_billing_details(orgId: str, accountId: str):
    """When the account is billed next: the end of its subscription's current period."""
    tenant = _account(orgId, accountId)
    subscription = current_subscription(db.session, tenant)
    settings = stored_company_settings(db.session, tenant)
    return AccountBillingDetailsResponse(
        account_id=str(tenant.public_id),
        currency=tenant.currency,
        next_billing_date=subscription.current_period_end if subscription else None,
        current_period_start=subscription.current_period_start if subscription else None,
        current_period_end=subscription.current_period_end - dt.timedelta(days=1)
        if subscription
        else None,
        collection_method=str(subscription.collection_method.value)
        if subscription and subscription.collection_method
        else None,
        auto_send=bool(settings.auto_send) if settings else False,
        balance_minor=balance(db.session, tenant).minor,
    )


# --- Consumptions --------------------------------------------------------------------------


@api.operation(
    "GET",
    ACCOUNT + "/consumptions",
    "List consumptions",
    query=ConsumptionListQuery,
    response=ConsumptionListResponse,
    tags=["Consumptions"],
    errors=COMMON_ERRORS,
)
def list_consumptions(orgId: str, accountId: str, query: ConsumptionListQuery):
    """The account's usage records, newest first; filter by metric and time."""
    tenant = _account(orgId, accountId)
    rows, total = consumption_page(
        db.session,
        tenant,
        metric=query.metric,
        since=_as_utc(query.since, "since", "query") if query.since else None,
        until=_as_utc(query.until, "until", "query") if query.until else None,
        limit=query.limit,
        offset=query.offset,
    )
    return ConsumptionListResponse(
        items=[out.consumption(r) for r in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@api.operation(
    "POST",
    ACCOUNT + "/consumptions",
    "Create a consumption",
    body=ConsumptionCreate,
    response=ConsumptionResponse,
    status=201,
    scope="write",
    tags=["Consumptions"],
    errors=(*COMMON_ERRORS, 409),
)
def create_consumption(orgId: str, accountId: str, body: ConsumptionCreate):
    """Record a usage record once per idempotency key.

    Repeating a key with the same data answers the first record again (201); the same key
    with different data is a 409, so a client bug is not billed silently.
    """
    tenant = _account(orgId, accountId)
    record = record_consumption(
        db.session,
        tenant,
        metric=body.metric,
        quantity=body.quantity,
        occurred_at=_as_utc(body.occurred_at),
        idempotency_key=body.idempotency_key,
        properties=dict(body.properties),
    )
    return out.consumption(record)


# --- Movements -----------------------------------------------------------------------------


@api.operation(
    "GET",
    ACCOUNT + "/movements",
    "List movements",
    query=ListQuery,
    response=MovementListResponse,
    tags=["Movements"],
    errors=COMMON_ERRORS,
)
def list_movements(orgId: str, accountId: str, query: ListQuery):
    """The account's ledger movements, newest first, with its balance."""
    tenant = _account(orgId, accountId)
    rows, total = movement_page(db.session, tenant, limit=query.limit, offset=query.offset)
    invoice_ids = invoice_public_ids(db.session, {r.invoice_id for r in rows if r.invoice_id})
    owed = balance(db.session, tenant)
    return MovementListResponse(
        items=[out.movement(r, invoice_ids) for r in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
        balance_minor=owed.minor,
        currency=owed.currency,
    )


# --- Refunds -------------------------------------------------------------------------------


@api.operation(
    "GET",
    ACCOUNT + "/refunds",
    "List refunds",
    query=ListQuery,
    response=RefundListResponse,
    tags=["Refunds"],
    errors=COMMON_ERRORS,
)
def list_refunds(orgId: str, accountId: str, query: ListQuery):
    """The account's refunds, newest first."""
    tenant = _account(orgId, accountId)
    rows, total = refund_page(db.session, tenant, limit=query.limit, offset=query.offset)
    invoice_ids = invoice_public_ids(db.session, {r.invoice_id for r in rows if r.invoice_id})
    payment_ids = payment_public_ids(db.session, {r.payment_id for r in rows})
    return RefundListResponse(
        items=[out.refund(r, invoice_ids, payment_ids) for r in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@api.operation(
    "POST",
    ACCOUNT + "/refunds",
    "Create a refund",
    body=RefundCreate,
    response=RefundResponse,
    status=201,
    scope="write",
    tags=["Refunds"],
    errors=PROVIDER_ERRORS,
)
def create_refund(orgId: str, accountId: str, body: RefundCreate):
    """Refund a payment of an invoice: the given amount, or all that is left.

    The invoice's newest succeeded payment with something left to refund is refunded, at
    its provider (Stripe, Mollie) or at once for a manual payment; the ledger records it.
    """
    tenant = _account(orgId, accountId)
    invoice = _invoice(tenant, body.invoice_id, "invoiceId", "body")
    payment = refundable_payment(db.session, tenant, invoice)
    if payment is None:
        raise ApiError(
            400,
            [
                error_entry(
                    ["body", "invoiceId"],
                    "The invoice has no payment with anything left to refund.",
                    "nothing_to_refund",
                )
            ],
        )
    amount = Money(body.amount_minor or refundable_minor(payment), payment.currency)
    if payment.provider == "manual":
        refund = refund_payment(db.session, payment, amount, reason=body.reason)
    else:
        refund = _refund_provider(payment).refund(db.session, payment, amount, reason=body.reason)
    return out.refund(
        refund, {invoice.id: str(invoice.public_id)}, {payment.id: str(payment.public_id)}
    )


# --- Billing info --------------------------------------------------------------------------


@api.operation(
    "GET",
    ACCOUNT + "/billing-info",
    "Retrieve billing info",
    response=BillingInfoResponse,
    tags=["BillingInfo"],
    errors=COMMON_ERRORS,
)
def get_billing_info(orgId: str, accountId: str):
    """The account's billing profile; 404 when it has none yet."""
    tenant = _account(orgId, accountId)
    profile = get_billing_profile(db.session, tenant)
    if profile is None:
        raise not_found("accountId", "Billing info")
    return out.billing_info(profile)


@api.operation(
    "PUT",
    ACCOUNT + "/billing-info",
    "Update billing info",
    body=BillingInfoUpdate,
    response=BillingInfoResponse,
    scope="write",
    tags=["BillingInfo"],
    errors=COMMON_ERRORS,
)
def update_billing_info(orgId: str, accountId: str, body: BillingInfoUpdate):
    """Replace the billing profile with the same rules as the portal's form.

    A rejected body writes nothing and answers 400 with one error per field.
    """
    tenant = _account(orgId, accountId)
    data = body.model_dump(mode="json")
    profile = upsert_billing_profile(db.session, tenant, ProfileInput.from_mapping(data))
    return out.billing_info(profile)


# --- Location tax --------------------------------------------------------------------------


@api.operation(
    "GET",
    ACCOUNT + "/location-tax",
    "Tax rate for a location",
    query=LocationTaxQuery,
    response=LocationTaxResponse,
    tags=["LocationTax"],
    errors=COMMON_ERRORS,
    raises=LOCATION_TAX_ERRORS,
)
def get_location_tax(orgId: str, accountId: str, query: LocationTaxQuery):
    """The VAT rates of a country on a date (default today): standard, reduced, EU member."""
    _account(orgId, accountId)
    on = query.date or dt.date.today()
    found = tax.location_tax(query.country, on)
    places = Decimal("0.0001")  # rates as the invoices store them (Percent: 4 places)
    return LocationTaxResponse(
        country=found["country"],
        standard_rate=found["standard_rate"].quantize(places),
        reduced_rates=[r.quantize(places) for r in found["reduced_rates"]],
        eu_member=found["eu_member"],
        valid_on=found["valid_on"],
    )


register_docs(api)
