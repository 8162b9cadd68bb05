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
import hashlib
import socket
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, jsonify, request
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from portal.api.accounts import serializers as out
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
from portal.api.core import Api, ApiError, error_entry, request_id
from portal.api.openapi import register_docs
from portal.catalog.models import CompanyBillingSettings, Subscription, SubscriptionStatus
from portal.db import parse_public_id, scoped
from portal.domain import tax
from portal.domain.money import Money
from portal.extensions import db, limiter
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement
from portal.ledger.services import balance
from portal.notifications.links import link_url, shared_link
from portal.payments.models import Payment, PaymentStatus, Refund
from portal.payments.providers import ProviderError, UnknownProvider, get_provider
from portal.payments.refunds import RefundRefused, refund_payment, refundable_minor
from portal.tenancy.models import Seller, Tenant
from portal.tenancy.profiles import (
    ProfileInput,
    ProfileInvalid,
    get_billing_profile,
    upsert_billing_profile,
)
from portal.usage.models import UsageRecord

#: Status code → the ``code`` of a GenericResponse.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    504: "gateway_timeout",
}


def generic_error_body(status: int, detail: list[dict[str, Any]]) -> dict[str, Any]:
    """A GenericResponseDTO from ``detail`` entries (``{loc, msg, type}``)."""
    status = account_status(status)
    errors = [
        {
            "field": ".".join(str(part) for part in entry.get("loc", [])),
            "message": entry.get("msg", ""),
            "type": entry.get("type", ""),
        }
        for entry in detail
    ]
    return GenericResponse(
        status=status,
        code=_CODES.get(status, "error"),
        message=errors[0]["message"] if errors else _CODES.get(status, "error"),
        errors=errors,
        request_id=request_id(),
    ).model_dump(mode="json", by_alias=True)


def account_status(status: int) -> int:
    """Validation errors (422 elsewhere) are 400 in this surface, as its reference lists."""
    return 400 if status == 422 else status


def dto_envelope(data: Any, status: int = 200, **top: Any) -> Response:
    """The DTO itself, camelCase, without an envelope."""
    body = data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else data
    response = jsonify(body)
    response.status_code = status
    return response


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
)
bp = api.blueprint
#: The part of every path before the operation's own.
ACCOUNT = "/<orgId>/accounts/<accountId>"
#: Errors every account operation may answer besides 401/403/429 (added by the machinery).
COMMON_ERRORS = (400, 404, 500)
PROVIDER_ERRORS = (*COMMON_ERRORS, 502, 504)


def _token_key() -> str:
    """Rate-limit bucket: the bearer token sent (hashed), else the client address."""
    header = request.headers.get("Authorization", "")
    if header:
        return "token:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    return "ip:" + (request.remote_addr or "")


limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=_token_key)(bp)


def _not_found(name: str, what: str) -> ApiError:
    return ApiError(404, [error_entry(["path", name], f"{what} not found.", "not_found")])


def _account(org_id: str, account_id: str) -> Tenant:
    """The tenant ``account_id`` of the seller ``org_id``; 404 for anything else."""
    seller_uid, tenant_uid = parse_public_id(org_id), parse_public_id(account_id)
    seller = (
        db.session.scalars(sa.select(Seller).where(Seller.public_id == seller_uid)).first()
        if seller_uid
        else None
    )
    if seller is None:
        raise _not_found("orgId", "Organization")
    tenant = (
        db.session.scalars(
            sa.select(Tenant).where(Tenant.public_id == tenant_uid, Tenant.seller_id == seller.id)
        ).first()
        if tenant_uid
        else None
    )
    if tenant is None:
        raise _not_found("accountId", "Account")
    return tenant


def _invoice(tenant: Tenant, invoice_id: str, name: str = "invoiceId", where: str = "path"):
    uid = parse_public_id(invoice_id)
    invoice = (
        db.session.scalars(scoped(Invoice, tenant).where(Invoice.public_id == uid)).first()
        if uid
        else None
    )
    if invoice is None:
        raise ApiError(404, [error_entry([where, name], "Invoice not found.", "not_found")])
    return invoice


def _is_timeout(exc: BaseException) -> bool:
    """Whether a provider failure was a timeout (504) rather than no answer at all (502)."""
    seen: BaseException | None = exc
    while seen is not None:
        if (
            isinstance(seen, TimeoutError | socket.timeout)
            or "timeout" in type(seen).__name__.lower()
            or "timed out" in str(seen).lower()
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _provider_failure(exc: ProviderError) -> ApiError:
    """A provider's failure as 504 (timeout), 502 (no usable answer) or 400 (refusal)."""
    if _is_timeout(exc):
        return ApiError(
            504, [error_entry(["provider"], "The payment provider timed out.", "timeout")]
        )
    if exc.code in ("provider_unavailable", "not_configured"):
        return ApiError(502, [error_entry(["provider"], exc.message, exc.code)])
    return ApiError(400, [error_entry(["provider"], exc.message, exc.code)])


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


def _page(query, limit: int, offset: int) -> tuple[list, int]:
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = list(db.session.scalars(query.limit(limit).offset(offset)))
    return rows, int(total or 0)


def _public_ids(model, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.session.execute(sa.select(model.id, model.public_id).where(model.id.in_(ids)))
    return {row_id: str(public_id) for row_id, public_id in rows}


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
        raise _not_found("invoiceId", "Issued invoice")
    link = shared_link(db.session, invoice)
    db.session.commit()
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
    subscription = db.session.scalars(
        scoped(Subscription, tenant)
        .where(Subscription.status != SubscriptionStatus.CANCELED)
        .order_by(Subscription.id)
    ).first()
    settings = db.session.scalars(scoped(CompanyBillingSettings, tenant)).first()
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
    select = scoped(UsageRecord, tenant)
    if query.metric:
        select = select.where(UsageRecord.metric == query.metric)
    if query.since:
        select = select.where(UsageRecord.occurred_at >= _as_utc(query.since, "since", "query"))
    if query.until:
        select = select.where(UsageRecord.occurred_at < _as_utc(query.until, "until", "query"))
    select = select.order_by(UsageRecord.occurred_at.desc(), UsageRecord.id.desc())
    rows, total = _page(select, query.limit, query.offset)
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
    occurred_at = _as_utc(body.occurred_at)
    existing = db.session.scalars(
        scoped(UsageRecord, tenant).where(UsageRecord.idempotency_key == body.idempotency_key)
    ).first()
    if existing is None:
        record = UsageRecord(
            tenant_id=tenant.id,
            metric=body.metric,
            quantity=body.quantity,
            occurred_at=occurred_at,
            idempotency_key=body.idempotency_key,
            properties=dict(body.properties),
        )
        db.session.add(record)
        try:
            db.session.commit()
        except sa.exc.IntegrityError:  # the same key, sent twice at once
            db.session.rollback()
            existing = db.session.scalars(
                scoped(UsageRecord, tenant).where(
                    UsageRecord.idempotency_key == body.idempotency_key
                )
            ).one()
        else:
            return out.consumption(record)
    same = (
        existing.metric == body.metric
        and existing.quantity == body.quantity
        and existing.occurred_at == occurred_at
    )
    if not same:
        raise ApiError(
            409,
            [
                error_entry(
                    ["body", "idempotencyKey"],
                    "This idempotency key was used for a different consumption.",
                    "idempotency_conflict",
                )
            ],
        )
    return out.consumption(existing)


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
    select = scoped(LedgerMovement, tenant).order_by(
        LedgerMovement.occurred_at.desc(), LedgerMovement.id.desc()
    )
    rows, total = _page(select, query.limit, query.offset)
    invoice_ids = _public_ids(Invoice, {r.invoice_id for r in rows if r.invoice_id})
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
    select = scoped(Refund, tenant).order_by(Refund.created_at.desc(), Refund.id.desc())
    rows, total = _page(select, query.limit, query.offset)
    invoice_ids = _public_ids(Invoice, {r.invoice_id for r in rows if r.invoice_id})
    payment_ids = _public_ids(Payment, {r.payment_id for r in rows})
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
    payment = db.session.scalars(
        scoped(Payment, tenant)
        .where(
            Payment.invoice_id == invoice.id,
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.amount_minor > Payment.refunded_minor,
        )
        .order_by(Payment.id.desc())
        .with_for_update()
    ).first()
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
    try:
        if payment.provider == "manual":
            refund = refund_payment(db.session, payment, amount, reason=body.reason)
        else:
            refund = get_provider(payment.provider).refund(
                db.session, payment, amount, reason=body.reason
            )
    except RefundRefused as exc:
        raise ApiError(
            400, [error_entry(["body", "amountMinor"], str(exc), "refund_refused")]
        ) from None
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
    except ProviderError as exc:
        raise _provider_failure(exc) from None
    db.session.commit()
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
        raise _not_found("accountId", "Billing info")
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
    try:
        profile = upsert_billing_profile(db.session, tenant, ProfileInput.from_mapping(data))
    except ProfileInvalid as exc:
        raise ApiError(
            400,
            [
                error_entry(["body", to_camel(name)], str(msg), "invalid")
                for name, msg in exc.errors.items()
            ],
        ) from None
    db.session.commit()
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
)
def get_location_tax(orgId: str, accountId: str, query: LocationTaxQuery):
    """The VAT rates of a country on a date (default today): standard, reduced, EU member."""
    _account(orgId, accountId)
    on = query.date or dt.date.today()
    try:
        found = tax.location_tax(query.country, on)
    except ValueError as exc:
        raise ApiError(
            400, [error_entry(["query", "country"], str(exc), "invalid_country")]
        ) from None
    except tax.UnknownRate as exc:
        raise ApiError(404, [error_entry(["query", "country"], str(exc), "no_rates")]) from None
    places = Decimal("0.0001")  # rates as the invoices store them (Percent: 4 places)
    return LocationTaxResponse(
        country=found["country"],
        standard_rate=found["standard_rate"].quantize(places),
        reduced_rates=[r.quantize(places) for r in found["reduced_rates"]],
        eu_member=found["eu_member"],
        valid_on=found["valid_on"],
    )


register_docs(api)
