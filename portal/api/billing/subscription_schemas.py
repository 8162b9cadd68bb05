"""Models of the tenant API's subscription operations (self-service), beside schemas.py.

Same conventions as the rest of the surface: snake_case, money as ``*_minor`` integers with
a ``currency``, quantities and prices as decimal strings, dates as ISO dates. Bodies forbid
unknown members; the views read them after the subscription is found, so another tenant's
id is a 404 whatever the body (:data:`SUBSCRIPTION_BODIES` documents them).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from portal.api.billing.schemas import DecimalString
from portal.catalog.self_service import CANCEL_REASONS, COMMENT_LENGTH

Uuid = Annotated[str, Field(max_length=64, json_schema_extra={"format": "uuid"})]
#: A quantity as a decimal string ("5", "2.5") or an integer; never a float.
QuantityIn = Annotated[str, Field(max_length=40, pattern=r"^[0-9]+(\.[0-9]+)?$")] | StrictInt


class SelfServePrice(BaseModel):
    id: str = Field(description="Send it as new_price_id to switch an item to this price.")
    product_name: str
    price_name: str
    model: Literal["flat", "per_unit", "graduated", "volume", "package"]
    unit_amount: DecimalString | None = Field(description="Major units; null for tiered prices.")
    currency: str


class SubscriptionItemResponse(BaseModel):
    price_id: str = Field(description="The item's current price; it names the item in changes.")
    product_name: str
    price_name: str
    model: Literal["flat", "per_unit", "graduated", "volume", "package"]
    usage_kind: Literal["licensed", "metered"]
    metric: str | None = Field(description="The usage metric of a metered price.")
    unit_amount: DecimalString | None = Field(description="Major units; null for tiered prices.")
    quantity: DecimalString | None = Field(description="Null for metered items.")
    period_amount_minor: int | None = Field(
        description="Net per period at this quantity; null for metered items."
    )
    quantity_changeable: bool = Field(
        description="Whether this company may change the quantity itself now."
    )
    switchable_prices: list[SelfServePrice] = Field(
        description="Self-serve prices this company may switch the item to now."
    )


class SubscriptionChangeRecord(BaseModel):
    effective_on: dt.date
    scheduled: bool = Field(description="Takes effect after today.")
    old_price_id: str
    new_price_id: str
    old_quantity: DecimalString
    new_quantity: DecimalString


class SubscriptionActions(BaseModel):
    """What the company's settings and the subscription's state let the company do now."""

    change: bool
    cancel: bool
    resume: bool


class SubscriptionResponse(BaseModel):
    id: str
    status: Literal["trialing", "active", "past_due", "canceled"]
    currency: str
    interval: Literal["month", "year"]
    interval_count: int
    started_on: dt.date
    current_period_start: dt.date
    current_period_end: dt.date = Field(description="The period's last day (inclusive).")
    renews_on: dt.date | None = Field(description="The next period's first day; null if none.")
    trial_end: dt.date | None = Field(description="The first paid day after a trial.")
    cancel_at_period_end: bool
    ends_on: dt.date | None = Field(
        description="The last day of a subscription that ends at period end."
    )
    cancel_reason: str | None = Field(description="The reason code, then ': ' and the comment.")
    canceled_at: dt.datetime | None
    period_total_minor: int | None = Field(
        description="Net per period of the licensed items; null without any."
    )
    items: list[SubscriptionItemResponse]
    changes: list[SubscriptionChangeRecord] = Field(
        description="Changes of the current period; its invoice prorates them."
    )
    actions: SubscriptionActions


class SubscriptionChangeRequest(BaseModel):
    """One item's new quantity and/or price, from today. Send only what changes."""

    model_config = ConfigDict(extra="forbid")

    price_id: Uuid = Field(description="The item to change: the id of its current price.")
    quantity: QuantityIn | None = Field(None, description='The new quantity, e.g. "5".')
    new_price_id: Uuid | None = Field(
        None, description="A self-serve price to switch to (see switchable_prices)."
    )


class PreviewLine(BaseModel):
    kind: str
    description: str
    quantity: DecimalString
    unit_price: DecimalString
    net_amount_minor: int
    vat_category: str
    vat_rate: DecimalString


class PreviewTotals(BaseModel):
    lines_total_minor: int
    allowance_total_minor: int
    charge_total_minor: int
    tax_exclusive_minor: int
    tax_minor: int
    tax_inclusive_minor: int
    amount_due_minor: int


class PreviewAllowance(BaseModel):
    reason: str | None
    amount_minor: int
    is_charge: bool
    vat_category: str
    vat_rate: DecimalString


class PreviewInvoice(BaseModel):
    currency: str
    period_start: dt.date | None
    period_end: dt.date | None
    lines: list[PreviewLine]
    totals: PreviewTotals
    allowances: list[PreviewAllowance]


class SubscriptionPreviewResponse(BaseModel):
    """The current period's invoice as the invoice run would issue it with the change."""

    subscription_id: str
    effective_on: dt.date
    invoice: PreviewInvoice | None = Field(description="Null when the period bills nothing.")
    current_amount_due_minor: int = Field(description="The period's invoice without the change.")
    difference_minor: int = Field(description="What the change adds (negative: saves).")


class SubscriptionCancelRequest(BaseModel):
    """Cancel at the end of the current period, saying why."""

    model_config = ConfigDict(extra="forbid")

    reason: Literal[CANCEL_REASONS]  # type: ignore[valid-type]
    comment: Annotated[str, Field(max_length=COMMENT_LENGTH)] | None = Field(
        None, description="Free text; required with the reason 'other'."
    )


#: Bodies the subscription views read themselves (operation id -> model), for the document.
SUBSCRIPTION_BODIES: dict[str, type] = {
    "preview_subscription_op": SubscriptionChangeRequest,
    "change_subscription_op": SubscriptionChangeRequest,
    "cancel_subscription_op": SubscriptionCancelRequest,
}
