"""Models of the provider-console billing API (provider-console-billing-api.txt).

Resources use the reference's camelCase; money is integer minor units (``*Minor``) beside
``currency``; decimals are strings. Collections answer ``{data, meta: {pagingInfo}}``,
changes ``{errors, data, meta}``, errors ``{errors: [...], data: null, meta}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel

T = TypeVar("T")

_FILTER = (
    'JSON array of FilterParameter, e.g. [{"property": "/status", "operation": "equals", '
    '"value": "Paid"}]; and/or/not take "items".'
)
_SORT = 'JSON array of SortParameter, e.g. [{"property": "/issueDate", "direction": "descending"}].'
_SELECT = 'JSON array of SelectParameter, e.g. [{"propertyPath": "/totals/amountDueMinor"}].'


class PagingInfo(BaseModel):
    total: int = Field(description="Resources matching the filter, on all pages.")
    count: int = Field(description="Resources in this answer.")
    offset: int


class ConsoleMeta(BaseModel):
    correlationId: str
    pagingInfo: PagingInfo | None = None


class ConsoleErrorItem(BaseModel):
    code: int
    type: str
    message: str
    location: str = Field(description="Where the problem is, e.g. query/toDate or body/0.")


class ConsoleErrorResponse(BaseModel):
    errors: list[ConsoleErrorItem]
    data: None = None
    meta: ConsoleMeta


class CollectionResponse(BaseModel, Generic[T]):
    data: list[T]
    meta: ConsoleMeta


class ResourceResponse(BaseModel, Generic[T]):
    data: T
    meta: ConsoleMeta


class ActionResponse(BaseModel, Generic[T]):
    errors: list[ConsoleErrorItem] = Field(default_factory=list)
    data: T
    meta: ConsoleMeta


# --- query parameters ----------------------------------------------------------------------


class CollectionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filter: str | None = Field(None, max_length=10_000, description=_FILTER)
    sort: str | None = Field(None, max_length=2_000, description=_SORT)
    select: str | None = Field(None, max_length=2_000, description=_SELECT)
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=2_147_483_647)


class InvoiceCollectionQuery(CollectionQuery):
    fromDate: dt.date = Field(
        description="First day of the range (issue date, or period start of drafts)."
    )
    toDate: dt.date = Field(description="Last day of the range; at most one year after fromDate.")


class SelectQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    select: str | None = Field(None, max_length=2_000, description=_SELECT)


class PaidStateQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["Paid", "Unpaid"]


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fromDate: dt.date
    toDate: dt.date


class GenerateQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    period: str | None = Field(
        None,
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="Month to invoice as YYYY-MM; the previous month when omitted.",
    )


class PatchOperation(BaseModel):
    op: Literal["add", "replace", "test", "remove", "move", "copy"]
    path: str = Field(max_length=200)
    value: Any = None
    from_: str | None = Field(None, alias="from", max_length=200)


class SettingsPatch(BaseModel):
    """The RFC 6902 body: validated as a whole by the patch engine, described here."""

    model_config = ConfigDict(extra="forbid")


# --- resources -----------------------------------------------------------------------------


class CompanyBillingSettingsResource(BaseModel):
    companyUid: str
    companyName: str
    billingDay: int
    paymentTermsDays: int | None
    autoFinalize: bool
    autoSend: bool
    autoCollect: bool
    showDraftsToTenant: bool
    discountPercent: str
    notes: str | None


class InvoiceTotals(BaseModel):
    linesMinor: int
    allowancesMinor: int
    chargesMinor: int
    taxExclusiveMinor: int
    taxMinor: int
    taxInclusiveMinor: int
    amountDueMinor: int
    amountPaidMinor: int
    amountCreditedMinor: int
    amountOpenMinor: int


class InvoiceResource(BaseModel):
    instanceUid: str
    companyUid: str
    companyName: str
    number: str | None
    status: Literal["Draft", "Finalized", "Sent", "Paid", "Uncollectible", "Void"]
    paidState: Literal["Paid", "Unpaid"]
    currency: str
    issueDate: dt.date | None
    dueDate: dt.date | None
    periodStart: dt.date | None
    periodEnd: dt.date | None
    totals: InvoiceTotals
    createdAt: dt.datetime
    finalizedAt: dt.datetime | None
    sentAt: dt.datetime | None
    paidAt: dt.datetime | None


class JobResource(BaseModel):
    jobUid: str
    kind: str
    status: str
    progress: dict
    params: dict
    result: Any = None
    error: str | None = None
    createdAt: dt.datetime | None = None
    startedAt: dt.datetime | None = None
    finishedAt: dt.datetime | None = None
    links: dict = Field(default_factory=dict)


class DeletedResource(BaseModel):
    instanceUid: str
    deleted: bool


class PdfLink(RootModel[str]):
    """A URL that downloads the PDF for 10 minutes (the reference answers a bare string)."""
