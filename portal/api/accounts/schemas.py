"""Request and response models of the account billing API (reference: account-billing-api.txt).

The reference names its answers as DTOs (InvoicePublicLinkResponseDTO,
AccountBillingDetailsResponseDTO, GenericResponseDTO), so fields are camelCase on the wire;
Python code uses the snake_case attribute names. Money is an integer in the currency's
minor unit (``...Minor``) beside an ISO 4217 ``currency``; quantities and rates are decimal
strings, never floats.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel

from portal.tenancy.models import EInvoiceFormat

#: A decimal sent as a string so no client parses it into a float.
DecimalString = Annotated[
    Decimal, PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json")
]
#: The page size limit of every list.
MAX_LIMIT = 100


class Dto(BaseModel):
    """camelCase on the wire, snake_case in Python; both accepted on input."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


class InputDto(Dto):
    """A request body or query: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        """PostgreSQL text cannot hold NUL: refuse it here (400), not in the database (500)."""
        if _has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


# --- Errors --------------------------------------------------------------------------------


class ErrorDetail(Dto):
    field: str = Field(description="Where the problem is, e.g. body.amountMinor or path.")
    message: str
    type: str = Field(description="A machine-readable reason, e.g. missing or not_found.")


class GenericResponse(Dto):
    """GenericResponseDTO: every error of this surface (400, 401, 403, 404, 429, 500, 502,
    504) has this shape."""

    status: int = Field(description="The HTTP status code.")
    code: str = Field(description="bad_request, unauthorized, forbidden, not_found, ...")
    message: str = Field(description="What went wrong, for people.")
    errors: list[ErrorDetail] = Field(default_factory=list)
    request_id: str = Field(description="The X-Request-Id sent, or one made; quote it.")


# --- Invoices ------------------------------------------------------------------------------


class InvoicePublicLinkResponse(Dto):
    """InvoicePublicLinkResponseDTO: a signed link a billing contact opens without login."""

    invoice_id: str = Field(description="The invoice's public id.")
    invoice_number: str
    url: str = Field(description="The signed /i/<token> URL: one invoice, view and pay.")
    expires_at: dt.datetime


class AccountBillingDetailsResponse(Dto):
    """AccountBillingDetailsResponseDTO: when the account is billed next."""

    account_id: str
    currency: str
    next_billing_date: dt.date | None = Field(
        description="The day the current period's invoice is made; null without a subscription."
    )
    current_period_start: dt.date | None
    current_period_end: dt.date | None = Field(description="Last day of the current period.")
    collection_method: str | None = Field(
        description="charge_automatically or send_invoice; null without a subscription."
    )
    auto_send: bool = Field(description="Whether invoices are e-mailed once finalized.")
    balance_minor: int = Field(description="What the account owes now (sum of movements).")


# --- Consumptions --------------------------------------------------------------------------


class ListQuery(InputDto):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=10_000_000)


class ConsumptionListQuery(ListQuery):
    metric: Annotated[str | None, Field(max_length=60)] = None
    since: dt.datetime | None = Field(None, description="Occurred at or after (ISO 8601).")
    until: dt.datetime | None = Field(None, description="Occurred before (ISO 8601).")


class ConsumptionCreate(InputDto):
    """A usage record; the idempotency key makes a repeated report count once."""

    metric: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.:-]+$")
    quantity: Decimal = Field(ge=0, le=Decimal("999999999999"), decimal_places=6)
    occurred_at: dt.datetime = Field(description="With a time zone (ISO 8601).")
    idempotency_key: str = Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")
    properties: dict[str, str | int | bool | None] = Field(default_factory=dict, max_length=50)


class ConsumptionResponse(Dto):
    id: str
    metric: str
    quantity: DecimalString
    occurred_at: dt.datetime
    idempotency_key: str
    properties: dict
    created_at: dt.datetime


class ConsumptionListResponse(Dto):
    items: list[ConsumptionResponse]
    total: int
    limit: int
    offset: int


# --- Movements -----------------------------------------------------------------------------


class MovementResponse(Dto):
    id: str
    kind: str = Field(description="invoice, payment, refund, credit_note, adjustment, ...")
    amount_minor: int = Field(description="Signed: positive increases what the account owes.")
    currency: str
    description: str
    invoice_id: str | None
    occurred_at: dt.datetime


class MovementListResponse(Dto):
    items: list[MovementResponse]
    total: int
    limit: int
    offset: int
    balance_minor: int = Field(description="Sum of all movements of the account's currency.")
    currency: str


# --- Refunds -------------------------------------------------------------------------------


class RefundCreate(InputDto):
    invoice_id: str = Field(min_length=1, max_length=64)
    amount_minor: int | None = Field(
        None, ge=1, le=10**15, description="Default: all that is left to refund."
    )
    reason: Annotated[str | None, Field(max_length=300)] = None


class RefundResponse(Dto):
    id: str
    invoice_id: str | None
    payment_id: str
    amount_minor: int
    currency: str
    reason: str | None
    status: str = Field(description="pending, succeeded or failed (at the provider).")
    created_at: dt.datetime


class RefundListResponse(Dto):
    items: list[RefundResponse]
    total: int
    limit: int
    offset: int


# --- Billing info --------------------------------------------------------------------------

_Text200 = Annotated[str | None, Field(default=None, max_length=200)]
_Text100 = Annotated[str | None, Field(default=None, max_length=100)]


class BillingInfoUpdate(InputDto):
    """The whole billing profile; PUT replaces it, so omitted optional fields are cleared."""

    company_name: str = Field(max_length=200)
    address_line1: str = Field(max_length=200)
    address_line2: _Text200 = None
    postal_code: str = Field(max_length=20)
    city: str = Field(max_length=100)
    region: _Text100 = None
    country: str = Field(max_length=2, description="ISO 3166-1 alpha-2, e.g. DE.")
    vat_id: Annotated[str | None, Field(max_length=40)] = None
    tax_exempt: bool = False
    tax_exemption_reason: _Text200 = None
    billing_email: str = Field(max_length=254)
    cc_emails: list[Annotated[str, Field(max_length=254)]] = Field(
        default_factory=list, max_length=50
    )
    contact_name: _Text200 = None
    phone: Annotated[str | None, Field(max_length=40)] = None
    buyer_reference: _Text100 = None
    purchase_order: _Text100 = None
    peppol_endpoint_id: _Text100 = None
    peppol_endpoint_scheme: Annotated[str | None, Field(max_length=10)] = None
    einvoice_format: EInvoiceFormat = EInvoiceFormat.NONE
    language: Annotated[str | None, Field(max_length=8)] = None


class BillingInfoResponse(Dto):
    company_name: str
    address_line1: str
    address_line2: str | None
    postal_code: str
    city: str
    region: str | None
    country: str
    vat_id: str | None
    tax_exempt: bool
    tax_exemption_reason: str | None
    billing_email: str
    cc_emails: list[str]
    contact_name: str | None
    phone: str | None
    buyer_reference: str | None
    purchase_order: str | None
    peppol_endpoint_id: str | None
    peppol_endpoint_scheme: str | None
    einvoice_format: EInvoiceFormat
    language: str
    currency: str
    payment_terms_days: int
    updated_at: dt.datetime


# --- Location tax --------------------------------------------------------------------------


class LocationTaxQuery(InputDto):
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. FR.")
    date: dt.date | None = Field(None, description="The tax point; default today.")


class LocationTaxResponse(Dto):
    country: str
    standard_rate: DecimalString = Field(description="Percent, e.g. 20.0000.")
    reduced_rates: list[DecimalString]
    eu_member: bool
    valid_on: dt.date
