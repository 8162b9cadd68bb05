"""Models of the console's subscription, one-off charge and usage operations.

Decimals travel as strings (or integers); a JSON number with a fraction is refused, so no
quantity or price passes through a float. Dates are ``YYYY-MM-DD``, times RFC 3339 with
their offset.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
)

from portal.api.console.query import NO_NUL, parse_date
from portal.api.console.schemas import ActionResponse, ResourceResponse


def _day(value: object) -> object:
    if isinstance(value, str):
        return parse_date(value)
    raise ValueError("send the date as YYYY-MM-DD")


#: A day as ``YYYY-MM-DD`` (a string in JSON; any other type is refused).
DateParam = Annotated[
    dt.date, BeforeValidator(_day), WithJsonSchema({"type": "string", "format": "date"})
]

_DECIMAL = {
    "anyOf": [{"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}, {"type": "integer"}],
    "description": 'A decimal as a string (e.g. "2.5") or an integer.',
}
#: A decimal as sent: a string or an integer, never a float (the services parse it).
DecimalIn = Annotated[
    StrictStr | StrictInt,
    WithJsonSchema(_DECIMAL),
]
Uid = Annotated[
    StrictStr,
    StringConstraints(max_length=64),
    WithJsonSchema({"type": "string", "format": "uuid"}),
]
Text = Annotated[StrictStr, StringConstraints(max_length=2000, pattern=NO_NUL)]


def _timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("use RFC 3339 with an offset, e.g. 2026-10-03T10:00:00Z") from None
    if value.utcoffset() is None:
        raise ValueError("the timestamp needs its offset, e.g. 2026-10-03T10:00:00Z")
    return value.astimezone(dt.UTC)


Timestamp = Annotated[
    StrictStr,
    StringConstraints(max_length=40),
    AfterValidator(_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- subscriptions ---------------------------------------------------------------------------


class SubscriptionItemIn(_Body):
    priceUid: Uid
    quantity: DecimalIn | None = Field(
        None, description="Licensed prices: more than 0. Metered prices: absent (usage)."
    )


class SubscriptionCreate(_Body):
    items: list[SubscriptionItemIn] = Field(min_length=1, max_length=20)
    startDate: DateParam
    billingAnchor: DateParam | None = Field(
        None,
        description="First period start (default: startDate); periods follow the prices' "
        "interval from it. Within one interval of startDate.",
    )
    trialEnd: DateParam | None = Field(None, description="First paid day, after startDate.")


class SubscriptionChangeIn(_Body):
    priceUid: Uid = Field(description="The item to change, by its current price.")
    quantity: DecimalIn | None = Field(None, description="The new licensed quantity.")
    newPriceUid: Uid | None = Field(None, description="The new price (same currency, interval).")
    effectiveDate: DateParam = Field(description="First day on the new terms (current period).")


class SubscriptionPatch(_Body):
    """Either a change of one item (prorated by the period's invoice), or
    ``cancelAtPeriodEnd: false`` to resume a pending cancellation."""

    change: SubscriptionChangeIn | None = None
    cancelAtPeriodEnd: Literal[False] | None = None


class PreviewIn(_Body):
    change: SubscriptionChangeIn | None = Field(
        None, description="Absent: the current period's invoice as it stands."
    )


class CancelQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: Literal["periodEnd", "now"] = Field(
        description="periodEnd: bill the current period, nothing after (resumable). now: the "
        "period ends early; its final invoice is issued, or its issued invoice credited."
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=NO_NUL)]
    effectiveDate: DateParam | None = Field(
        None, description="With at=now: the first day not billed (default today)."
    )


class SubscriptionItemOut(BaseModel):
    priceUid: str
    priceName: str
    usageKind: Literal["licensed", "metered"]
    metric: str | None
    quantity: str | None


class AppliedCouponOut(BaseModel):
    couponUid: str = Field(json_schema_extra={"format": "uuid"})
    code: str
    name: str
    percentOff: str | None
    amountOffMinor: int | None
    currency: str | None
    duration: Literal["once", "repeating", "forever"]
    durationPeriods: int | None
    periodsUsed: int = Field(description="Issued invoices that carried its allowance.")
    appliedAt: dt.datetime
    removedAt: dt.datetime | None
    applies: bool = Field(description="Whether it discounts the next invoice.")


class SubscriptionResource(BaseModel):
    instanceUid: str = Field(json_schema_extra={"format": "uuid"})
    companyUid: str = Field(json_schema_extra={"format": "uuid"})
    status: Literal["Trialing", "Active", "PastDue", "Canceled"]
    currency: str
    interval: Literal["month", "year"]
    intervalCount: int
    billingAnchor: dt.date
    currentPeriodStart: dt.date
    currentPeriodEnd: dt.date = Field(description="Last day of the current period.")
    trialEnd: dt.date | None
    cancelAtPeriodEnd: bool
    endsOn: dt.date | None = Field(description="First day no longer billed, when it ends.")
    canceledAt: dt.datetime | None
    cancelReason: str | None
    items: list[SubscriptionItemOut]
    coupons: list[AppliedCouponOut] = Field(
        description="Coupons put on it, removed ones too (applies: false)."
    )


class SubscriptionCancellation(BaseModel):
    subscription: SubscriptionResource
    finalInvoiceUid: str | None
    creditNoteUid: str | None


class PreviewLineOut(BaseModel):
    kind: str
    description: str
    quantity: str
    unitPrice: str
    netAmountMinor: int
    vatCategory: str
    vatRate: str


class PreviewOut(BaseModel):
    currency: str
    periodStart: dt.date | None
    periodEnd: dt.date | None
    lines: list[PreviewLineOut]
    totals: dict[str, int]
    allowances: list[dict]


class SubscriptionCollection(BaseModel):
    data: list[SubscriptionResource]
    meta: dict


class CouponApplyIn(_Body):
    """The coupon by its uid or by its code (one of the two)."""

    couponUid: Uid | None = None
    code: Annotated[StrictStr, StringConstraints(min_length=1, max_length=60)] | None = None


SubscriptionAnswer = ResourceResponse[SubscriptionResource]
SubscriptionAction = ActionResponse[SubscriptionResource]
CancellationAction = ActionResponse[SubscriptionCancellation]
PreviewAnswer = ResourceResponse[PreviewOut | None]


# --- one-off charges -------------------------------------------------------------------------


class ChargeCreate(_Body):
    description: Text
    quantity: DecimalIn
    unitPrice: DecimalIn = Field(description="Net, in major units of the company's currency.")
    taxTreatment: Literal["services", "goods"] = "services"
    vatExemptionReason: Text | None = None
    timing: Literal["nextInvoice", "now"] = Field(
        "nextInvoice",
        description="nextInvoice: on the company's next periodic invoice. now: issued at "
        "once as an invoice of its own.",
    )


class ChargeResource(BaseModel):
    instanceUid: str = Field(json_schema_extra={"format": "uuid"})
    companyUid: str = Field(json_schema_extra={"format": "uuid"})
    description: str
    quantity: str
    unitPrice: str
    currency: str
    taxTreatment: Literal["services", "goods"]
    timing: Literal["nextInvoice", "now"]
    invoiceUid: str | None = Field(description="The invoice that billed it, once billed.")
    createdAt: dt.datetime


ChargeAction = ActionResponse[ChargeResource]


# --- usage -----------------------------------------------------------------------------------

Property = StrictStr | StrictInt | bool | None


class UsageEventIn(_Body):
    idempotencyKey: Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)]
    metric: Annotated[StrictStr, StringConstraints(min_length=1, max_length=60)]
    quantity: DecimalIn
    timestamp: Timestamp
    properties: dict[str, Property] = Field(default_factory=dict, max_length=50)


class UsageBatchIn(_Body):
    events: list[UsageEventIn] = Field(
        min_length=1,
        json_schema_extra={"maxItems": 1000},
        description="1 to 1,000 events; more is a 422 and nothing is written.",
    )


class UsageEventResult(BaseModel):
    index: int
    idempotencyKey: str
    status: Literal["created", "duplicate", "conflict", "period_invoiced", "invalid", "not_written"]
    code: int = Field(description="HTTP-style status of the event (201, 200, 409, 422, 424).")
    usageUid: str | None
    reason: str | None
    message: str | None
    remedy: str | None = Field(description="For period_invoiced: how to correct it.")
    invoiceNumber: str | None


class UsageBatchOut(BaseModel):
    created: int
    duplicates: int
    results: list[UsageEventResult]


UsageBatchAnswer = ActionResponse[UsageBatchOut]
