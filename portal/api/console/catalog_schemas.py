"""Models of the catalog operations of the console API: products, prices and coupons.

Decimals are strings; money is integer minor units beside ``currency``. Bodies accept JSON
values loosely typed here and are checked by the catalog services, whose messages answer
400 at the field (``/unitAmount``, ``/tiers/1/upTo``), so pages and API say the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from portal.api.console.schemas import ActionResponse, CollectionResponse, ResourceResponse

_UUID: dict[str, Any] = {"format": "uuid"}
_DECIMAL = "Decimal string (a JSON number is read through its text)."


class TierResource(BaseModel):
    upTo: str | None = Field(description="Inclusive upper bound; null on the last tier.")
    unitAmount: str = Field(description=_DECIMAL)
    flatAmount: str = Field(description=_DECIMAL)


class PriceResource(BaseModel):
    priceUid: str = Field(json_schema_extra=_UUID)
    productUid: str = Field(json_schema_extra=_UUID)
    code: str
    nickname: str
    currency: str = Field(description="ISO 4217.")
    model: Literal["flat", "per_unit", "graduated", "volume", "package"]
    usageKind: Literal["licensed", "metered"]
    metric: str | None
    interval: Literal["month", "year"]
    intervalCount: int
    unitAmount: str | None = Field(description=_DECIMAL + " Flat, per unit and package.")
    packageSize: str | None
    unitCode: str = Field(description="UN/ECE Recommendation 20 (C62 = one).")
    trialDays: int
    taxTreatment: Literal["services", "goods"]
    vatExemptionReason: str | None
    selfServe: bool
    tiers: list[TierResource]
    version: int
    replacesUid: str | None = Field(json_schema_extra=_UUID)
    archived: bool
    archivedAt: dt.datetime | None
    createdAt: dt.datetime


class ProductResource(BaseModel):
    productUid: str = Field(json_schema_extra=_UUID)
    sellerUid: str = Field(json_schema_extra=_UUID)
    code: str
    name: str
    description: str | None
    archived: bool
    archivedAt: dt.datetime | None
    createdAt: dt.datetime
    priceUids: list[str]


class CouponResource(BaseModel):
    couponUid: str = Field(json_schema_extra=_UUID)
    sellerUid: str = Field(json_schema_extra=_UUID)
    code: str
    name: str
    percentOff: str | None = Field(description="Decimal string, above 0 and at most 100.")
    amountOffMinor: int | None
    currency: str | None
    duration: Literal["once", "repeating", "forever"]
    durationPeriods: int | None
    archived: bool
    archivedAt: dt.datetime | None
    createdAt: dt.datetime


_BODY = ConfigDict(extra="forbid")


class ProductCreate(BaseModel):
    model_config = _BODY

    sellerUid: Any = Field(json_schema_extra=_UUID)
    code: Any
    name: Any
    description: Any = None


class ProductPatch(BaseModel):
    model_config = _BODY

    code: Any = None
    name: Any = None
    description: Any = None


class TierBody(BaseModel):
    model_config = _BODY

    upTo: Any = None
    unitAmount: Any = None
    flatAmount: Any = None


class PricePatch(BaseModel):
    model_config = _BODY

    code: Any = None
    nickname: Any = None
    currency: Any = None
    model: Any = Field(None, description="flat, per_unit, graduated, volume or package.")
    usageKind: Any = Field(None, description="licensed (default) or metered.")
    metric: Any = Field(None, description="The usage metric of a metered price.")
    interval: Any = Field(None, description="month (default) or year.")
    intervalCount: Any = None
    unitAmount: Any = Field(None, description=_DECIMAL)
    packageSize: Any = Field(None, description=_DECIMAL)
    unitCode: Any = None
    trialDays: Any = None
    taxTreatment: Any = Field(None, description="services (default) or goods.")
    vatExemptionReason: Any = None
    selfServe: Any = None
    tiers: list[TierBody] | None = None


class PriceCreate(PricePatch):
    productUid: Any = Field(json_schema_extra=_UUID)


class CouponCreate(BaseModel):
    model_config = _BODY

    sellerUid: Any = Field(json_schema_extra=_UUID)
    code: Any
    name: Any
    percentOff: Any = Field(None, description="Decimal, above 0 and at most 100; or")
    amountOffMinor: Any = Field(None, description="a fixed amount in minor units with")
    currency: Any = None
    duration: Any = Field(None, description="once (default), repeating or forever.")
    durationPeriods: Any = Field(None, description="Invoices a repeating coupon discounts.")


class ProductCollection(CollectionResponse[ProductResource]):
    pass


class ProductAnswer(ResourceResponse[ProductResource]):
    pass


class ProductAction(ActionResponse[ProductResource]):
    pass


class PriceCollection(CollectionResponse[PriceResource]):
    pass


class PriceAnswer(ResourceResponse[PriceResource]):
    pass


class PriceAction(ActionResponse[PriceResource]):
    pass


class CouponCollection(CollectionResponse[CouponResource]):
    pass


class CouponAnswer(ResourceResponse[CouponResource]):
    pass


class CouponAction(ActionResponse[CouponResource]):
    pass
