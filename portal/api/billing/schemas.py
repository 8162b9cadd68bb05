"""Request and response models of the tenant billing API (reference: tenant-billing-api.txt).

Money is an integer in the currency's minor unit (``*_minor``) beside an ISO 4217
``currency``; quantities, unit prices and rates are decimal strings, never floats. The
generic envelopes get the reference's names (``ApiResponse_InvoiceResponse_``…) from
pydantic's naming of parametrized models.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from portal.invoices.queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from portal.tenancy.models import EInvoiceFormat

#: A decimal sent as a string so no client parses it into a float.
DecimalString = Annotated[
    Decimal, PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json")
]
T = TypeVar("T")


class Meta(BaseModel):
    request_id: str = Field(description="The X-Request-Id sent, or one made for the request.")
    api_version: str


class ApiResponse(BaseModel, Generic[T]):
    data: T
    meta: Meta


class Pagination(BaseModel):
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)
    total: int = Field(ge=0, description="Items on all pages.")
    pages: int = Field(ge=1)


class PaginatedResponse(BaseModel, Generic[T]):
    data: list[T]
    pagination: Pagination
    meta: Meta


class ValidationError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationError(BaseModel):
    detail: list[ValidationError]


# --- Billing profile -----------------------------------------------------------------------

_Text200 = Annotated[str | None, Field(default=None, max_length=200)]
_Text100 = Annotated[str | None, Field(default=None, max_length=100)]


class BillingProfileCreateUpdate(BaseModel):
    """The whole editable profile; PUT replaces it, so omitted optional fields are cleared."""

    model_config = ConfigDict(extra="forbid")

    company_name: str = Field(max_length=200, description="Buyer legal name (BT-44).")
    address_line1: str = Field(max_length=200)
    address_line2: _Text200 = None
    postal_code: str = Field(max_length=20)
    city: str = Field(max_length=100)
    region: _Text100 = None
    country: str = Field(max_length=2, description="ISO 3166-1 alpha-2 code, e.g. DE.")
    vat_id: Annotated[str | None, Field(max_length=40)] = Field(
        None, description="VAT identifier with or without country prefix; spaces are removed."
    )
    tax_exempt: bool = False
    tax_exemption_reason: _Text200 = Field(None, description="Required when tax_exempt.")
    billing_email: str = Field(max_length=254, description="Where invoices are e-mailed.")
    cc_emails: list[Annotated[str, Field(max_length=254)]] = Field(
        default_factory=list, max_length=50, description="Copies of every invoice e-mail."
    )
    contact_name: _Text200 = None
    phone: Annotated[str | None, Field(max_length=40)] = None
    buyer_reference: _Text100 = Field(
        None, description="Buyer reference (BT-10); the Leitweg-ID for XRechnung."
    )
    purchase_order: _Text100 = Field(None, description="Purchase order reference (BT-13).")
    peppol_endpoint_id: _Text100 = None
    peppol_endpoint_scheme: Annotated[str | None, Field(max_length=10)] = Field(
        None, description="Peppol EAS code, e.g. 0204."
    )
    einvoice_format: EInvoiceFormat = Field(
        EInvoiceFormat.NONE, description="The structured invoice sent with the PDF."
    )
    language: str | None = Field(None, max_length=8, description="Invoice language, e.g. de.")


class BillingProfileResponse(BaseModel):
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
    currency: str = Field(description="Set by the seller.")
    payment_terms_days: int = Field(description="Set by the seller.")
    created_at: dt.datetime
    updated_at: dt.datetime


# --- Invoices ------------------------------------------------------------------------------


class InvoiceListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    status: Literal["all", "open", "overdue", "paid", "draft"] = Field(
        "all",
        description="open: finalized or sent and unpaid; overdue: open past its due date; "
        "draft only when the seller shows drafts to tenants.",
    )


class DownloadQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: str = Field(
        "pdf", max_length=1000, description="pdf, ubl, xrechnung, cii, zugferd or facturx."
    )


class InvoiceLineResponse(BaseModel):
    position: int
    kind: str
    description: str
    quantity: DecimalString
    unit_code: str = Field(description="UN/ECE Rec 20 unit, e.g. C62 (one).")
    unit_price: DecimalString = Field(description="Net price per unit, in major units.")
    net_amount_minor: int
    vat_category: str = Field(description="EN 16931 VAT category code (S, Z, E, AE, K, G, O).")
    vat_rate: DecimalString
    vat_exemption_reason: str | None
    period_start: dt.date | None
    period_end: dt.date | None


class VatBreakdownResponse(BaseModel):
    category: str
    rate: DecimalString
    taxable_minor: int
    tax_minor: int
    exemption_reason: str | None


class AllowanceChargeResponse(BaseModel):
    is_charge: bool
    reason: str | None
    amount_minor: int
    vat_category: str
    vat_rate: DecimalString


class InvoiceResponse(BaseModel):
    id: str
    number: str | None = Field(description="Null while a draft.")
    status: str
    is_overdue: bool
    kind: str
    currency: str
    issue_date: dt.date | None
    due_date: dt.date | None
    period_start: dt.date | None
    period_end: dt.date | None
    buyer_reference: str | None
    purchase_order: str | None
    language: str
    lines_total_minor: int = Field(description="Sum of line net amounts (BT-106).")
    allowance_total_minor: int = Field(description="BT-107.")
    charge_total_minor: int = Field(description="BT-108.")
    tax_exclusive_minor: int = Field(description="BT-109.")
    tax_minor: int = Field(description="BT-110.")
    tax_inclusive_minor: int = Field(description="BT-112.")
    prepaid_minor: int = Field(description="BT-113.")
    rounding_minor: int = Field(description="BT-114.")
    amount_due_minor: int = Field(description="BT-115.")
    amount_paid_minor: int
    amount_credited_minor: int
    amount_open_minor: int = Field(description="Still to be paid.")
    finalized_at: dt.datetime | None
    sent_at: dt.datetime | None
    paid_at: dt.datetime | None
    pdf_url: str = Field(description="The PDF endpoint of this invoice.")
    lines: list[InvoiceLineResponse] | None = Field(
        None, description="Line items; in the invoice detail only."
    )
    vat_breakdown: list[VatBreakdownResponse] | None = None
    allowances_charges: list[AllowanceChargeResponse] | None = None


class SendInvoiceResult(BaseModel):
    invoice_id: str
    status: str
    to: list[str]
    cc: list[str]
    attachments: list[str]


# --- Overview and upcoming -----------------------------------------------------------------


class PaymentMethodResponse(BaseModel):
    id: str
    provider: str
    method_type: str
    status: Literal["pending", "active", "inactive"]
    is_default: bool
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    holder_name: str | None
    mandate_reference: str | None
    warning: str | None = Field(
        description="expired, expires_soon (within 30 days) or revoked; null when fine."
    )
    created_at: dt.datetime
    next_action: dict | None = Field(
        None, description="For a pending method: client_secret or redirect_url to finish setup."
    )


class EstimateSummary(BaseModel):
    period_start: dt.date
    period_end: dt.date = Field(description="Last day of the period, inclusive.")
    to_date_amount_due_minor: int
    projected_amount_due_minor: int


class MonthSpendResponse(BaseModel):
    month: str = Field(description="YYYY-MM")
    amount_minor: int


class BillingOverviewResponse(BaseModel):
    currency: str
    amount_open_minor: int
    amount_overdue_minor: int
    open_count: int
    overdue_count: int
    next_billing_date: dt.date | None
    upcoming: EstimateSummary | None
    default_payment_method: PaymentMethodResponse | None
    recent_invoices: list[InvoiceResponse]
    monthly_spend: list[MonthSpendResponse] = Field(description="Last 12 months, oldest first.")


class EstimateLine(BaseModel):
    description: str
    kind: str
    quantity: DecimalString
    unit_price: DecimalString
    net_amount_minor: int
    vat_category: str
    vat_rate: DecimalString


class EstimateTotals(BaseModel):
    lines_total_minor: int
    allowance_total_minor: int
    tax_exclusive_minor: int
    tax_minor: int
    tax_inclusive_minor: int
    amount_due_minor: int


class QuotaUsageResponse(BaseModel):
    metric: str
    used: DecimalString
    limit: DecimalString | None
    percent: DecimalString | None
    is_hard: bool


class UpcomingInvoiceResponse(BaseModel):
    currency: str
    period_start: dt.date
    period_end: dt.date = Field(description="Last day of the period, inclusive.")
    next_billing_date: dt.date
    elapsed: DecimalString = Field(description="Share of the period passed, 0 to 1.")
    to_date: EstimateTotals
    projected: EstimateTotals
    lines: list[EstimateLine] = Field(description="The projected lines.")
    to_date_lines: list[EstimateLine]
    quotas: list[QuotaUsageResponse]


# --- Payment methods and providers ---------------------------------------------------------


class PaymentMethodCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_slug: str = Field(max_length=100)
    method_type: str = Field(max_length=100)
    return_url: str | None = Field(None, max_length=2000)


class PaymentProviderSetupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method_type: str = Field(max_length=100)
    return_url: str | None = Field(None, max_length=2000)


class PaymentProviderConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirmation_data: dict = Field(
        description="Stripe: {setup_intent_id}; Mollie: {payment_id} (from the return URL)."
    )


class PaymentProviderResponse(BaseModel):
    slug: str
    name: str
    method_types: list[str]
    flow: Literal["client_secret", "redirect"]
