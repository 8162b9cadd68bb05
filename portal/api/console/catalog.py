"""The catalog in the provider-console API: products, prices and coupons.

``/api/v1/organizations/billing/{products,prices,coupons}``: the console's envelope, errors,
admin tokens, X-Request-id idempotency and collections (filter, sort, select, limit,
offset), on a blueprint of its own because these paths are beside ``…/companies``, not
under it. Every change is a catalog service (the same as the admin pages): a price already
on an issued invoice is never changed, its edit answers the new version; DELETE archives.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from portal.api.console.catalog_schemas import (
    CouponAction,
    CouponAnswer,
    CouponCollection,
    CouponCreate,
    CouponResource,
    PriceAction,
    PriceAnswer,
    PriceCollection,
    PriceCreate,
    PricePatch,
    PriceResource,
    ProductAction,
    ProductAnswer,
    ProductCollection,
    ProductCreate,
    ProductPatch,
    ProductResource,
)
from portal.api.console.collections import selected_paths, selection
from portal.api.console.common import not_found, token_actor
from portal.api.console.envelope import (
    action,
    check_request,
    console_envelope,
    console_error_body,
    console_status,
    echo_headers,
    listing,
    one,
)
from portal.api.console.errors import ERRORS
from portal.api.console.idempotency import idempotent
from portal.api.console.query import Field, QueryLanguage
from portal.api.console.schemas import ConsoleErrorResponse, collection_query, select_query
from portal.api.console.serializers import coupon_terms
from portal.api.core import Api, ApiError, error_entry
from portal.api.openapi import register_docs
from portal.catalog import coupons as coupon_services
from portal.catalog import products as catalog
from portal.catalog.models import Coupon, Plan, Price
from portal.catalog.products import CatalogInvalid
from portal.db import parse_public_id
from portal.extensions import db
from portal.tenancy.models import Seller, TokenKind

PREFIX = "/api/v1/organizations/billing"

_PRICE_NAMES = {
    "code": "code",
    "nickname": "nickname",
    "currency": "currency",
    "model": "model",
    "usageKind": "usage_kind",
    "metric": "metric",
    "interval": "interval",
    "intervalCount": "interval_count",
    "unitAmount": "unit_amount",
    "packageSize": "package_size",
    "unitCode": "unit_code",
    "trialDays": "trial_days",
    "taxTreatment": "tax_treatment",
    "vatExemptionReason": "vat_exemption_reason",
    "selfServe": "self_serve",
    "tiers": "tiers",
}
_TIER_NAMES = {"upTo": "up_to", "unitAmount": "unit_amount", "flatAmount": "flat_amount"}
_COUPON_NAMES = {
    "code": "code",
    "name": "name",
    "percentOff": "percent_off",
    "amountOffMinor": "amount_off_minor",
    "currency": "currency",
    "duration": "duration",
    "durationPeriods": "duration_periods",
}
_CAMEL = {
    snake: camel
    for names in (_PRICE_NAMES, _TIER_NAMES, _COUPON_NAMES)
    for camel, snake in names.items()
}


def _location(field: str) -> str:
    """``tiers.1.up_to`` → ``/tiers/1/upTo``."""
    return "/" + "/".join(_CAMEL.get(part, part) for part in field.split("."))


def catalog_invalid(exc: CatalogInvalid) -> ApiError:
    """Catalog input the services refuse: 400, one error per field, named as in the body."""
    return ApiError(
        400,
        [
            error_entry(["body", _location(field)], message, "invalid_value")
            for field, message in exc.errors.items()
        ],
    )


api = Api(
    "api_console_catalog",
    __name__,
    PREFIX,
    title="Provider console catalog API",
    area="admin",
    error_body=console_error_body,
    error_status=console_status,
    envelope=console_envelope,
    token_kind=TokenKind.ADMIN,
    error_schema=ConsoleErrorResponse,
    around=idempotent,
    errors={**ERRORS, CatalogInvalid: catalog_invalid},
)
bp = api.blueprint
bp.before_request(check_request)
bp.after_request(echo_headers)


def _seller(uid: Any) -> Seller:
    value = parse_public_id(uid) if isinstance(uid, str) else None
    seller = (
        db.session.scalars(sa.select(Seller).where(Seller.public_id == value)).first()
        if value
        else None
    )
    if seller is None:
        raise not_found(["body", "/sellerUid"], "Seller")
    return seller


# --- resources -------------------------------------------------------------------------------


def _decimal(value) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def product_resource(plan: Plan) -> dict:
    seller = db.session.get(Seller, plan.seller_id)
    return {
        "productUid": str(plan.public_id),
        "sellerUid": str(seller.public_id) if seller else "",
        "code": plan.code,
        "name": plan.name,
        "description": plan.description,
        "archived": plan.archived_at is not None,
        "archivedAt": plan.archived_at,
        "createdAt": plan.created_at,
        "priceUids": [str(price.public_id) for price in plan.prices],
    }


def price_resource(price: Price) -> dict:
    replaced = db.session.get(Price, price.replaces_id) if price.replaces_id else None
    return {
        "priceUid": str(price.public_id),
        "productUid": str(price.plan.public_id),
        "code": price.code,
        "nickname": price.nickname,
        "currency": price.currency,
        "model": price.model.value,
        "usageKind": price.usage_kind.value,
        "metric": price.metric,
        "interval": price.interval.value,
        "intervalCount": price.interval_count,
        "unitAmount": _decimal(price.unit_amount),
        "packageSize": _decimal(price.package_size),
        "unitCode": price.unit_code,
        "trialDays": price.trial_days,
        "taxTreatment": price.tax_treatment.value,
        "vatExemptionReason": price.vat_exemption_reason,
        "selfServe": price.self_serve,
        "tiers": [
            {
                "upTo": _decimal(tier.up_to),
                "unitAmount": _decimal(tier.unit_amount),
                "flatAmount": _decimal(tier.flat_amount),
            }
            for tier in price.tiers
        ],
        "version": price.version,
        "replacesUid": str(replaced.public_id) if replaced else None,
        "archived": price.archived_at is not None,
        "archivedAt": price.archived_at,
        "createdAt": price.created_at,
    }


def coupon_resource(coupon: Coupon) -> dict:
    seller = db.session.get(Seller, coupon.seller_id)
    return {
        **coupon_terms(coupon),
        "sellerUid": str(seller.public_id) if seller else "",
        "archived": coupon.archived_at is not None,
        "archivedAt": coupon.archived_at,
        "createdAt": coupon.created_at,
    }


# --- collections -----------------------------------------------------------------------------

PRODUCTS = QueryLanguage(
    "Product",
    {
        "/productUid": Field(Plan.public_id, "uuid"),
        "/sellerUid": Field(Seller.public_id, "uuid"),
        "/code": Field(Plan.code, "string"),
        "/name": Field(Plan.name, "string"),
        "/archived": Field(Plan.archived_at.is_not(None), "boolean"),
        "/createdAt": Field(Plan.created_at, "datetime"),
    },
    ProductResource,
)
PRICES = QueryLanguage(
    "Price",
    {
        "/priceUid": Field(Price.public_id, "uuid"),
        "/productUid": Field(Plan.public_id, "uuid"),
        "/code": Field(Price.code, "string"),
        "/nickname": Field(Price.nickname, "string"),
        "/currency": Field(Price.currency, "string"),
        "/model": Field(
            Price.model,
            "enum",
            {m: m for m in ("flat", "per_unit", "graduated", "volume", "package")},
        ),
        "/usageKind": Field(
            Price.usage_kind, "enum", {"licensed": "licensed", "metered": "metered"}
        ),
        "/selfServe": Field(Price.self_serve, "boolean"),
        "/version": Field(Price.version, "integer"),
        "/archived": Field(Price.archived_at.is_not(None), "boolean"),
        "/createdAt": Field(Price.created_at, "datetime"),
    },
    PriceResource,
)
COUPONS = QueryLanguage(
    "Coupon",
    {
        "/couponUid": Field(Coupon.public_id, "uuid"),
        "/sellerUid": Field(Seller.public_id, "uuid"),
        "/code": Field(Coupon.code, "string"),
        "/name": Field(Coupon.name, "string"),
        "/currency": Field(Coupon.currency, "string"),
        "/archived": Field(Coupon.archived_at.is_not(None), "boolean"),
        "/createdAt": Field(Coupon.created_at, "datetime"),
    },
    CouponResource,
)
_EXAMPLE: dict[str, list[Any]] = {
    "filter": [{"property": "/archived", "operation": "equals", "value": False}],
    "sort": [{"property": "/code", "direction": "ascending"}],
    "select": [{"propertyPath": "/code"}],
}
ProductCollectionQuery = collection_query("ProductCollectionQuery", PRODUCTS, _EXAMPLE)
ProductSelectQuery = select_query("ProductSelectQuery", PRODUCTS, _EXAMPLE["select"])
PriceCollectionQuery = collection_query("PriceCollectionQuery", PRICES, _EXAMPLE)
PriceSelectQuery = select_query("PriceSelectQuery", PRICES, _EXAMPLE["select"])
CouponCollectionQuery = collection_query("CouponCollectionQuery", COUPONS, _EXAMPLE)
CouponSelectQuery = select_query("CouponSelectQuery", COUPONS, _EXAMPLE["select"])


def _listing(query, language, model, resource):
    asked = selection(query, language)
    rows, total = catalog.catalog_list(
        db.session,
        model,
        where=asked.where,
        order_by=asked.order_by,
        limit=query.limit,
        offset=query.offset,
    )
    return listing([resource(row) for row in rows], total, asked.paths, query.offset)


def _values(body, names: dict[str, str]) -> dict[str, Any]:
    """The fields the body sets, by their service names (tiers' fields too)."""
    values: dict[str, Any] = {}
    for camel in body.model_fields_set:
        if camel not in names:
            continue
        value = getattr(body, camel)
        if camel == "tiers" and value is not None:
            value = [
                {_TIER_NAMES[k]: getattr(tier, k) for k in tier.model_fields_set} for tier in value
            ]
        values[names[camel]] = value
    return values


# --- products --------------------------------------------------------------------------------

_TAGS = {"tags": ["Catalog"]}


def _product(uid: str) -> Plan:
    plan = catalog.product_by_uid(db.session, uid)
    if plan is None:
        raise not_found(["path", "productUid"], "Product")
    return plan


@api.operation(
    "GET",
    "/products",
    "Get Products",
    query=ProductCollectionQuery,
    response=ProductCollection,
    **_TAGS,
)
def get_products(query):
    """Products of every seller, archived ones too (filter ``/archived``)."""
    return _listing(query, PRODUCTS, Plan, product_resource)


@api.operation(
    "POST",
    "/products",
    "Create Product",
    body=ProductCreate,
    response=ProductAction,
    scope="write",
    status=201,
    errors=(404,),
    **_TAGS,
)
def create_product(body: ProductCreate):
    """A product (``code`` unique per seller, ``name``, ``description``) of a seller."""
    seller = _seller(body.sellerUid)
    values = {k: getattr(body, k) for k in ("code", "name", "description")}
    plan = catalog.create_product(db.session, seller, values, token_actor())
    response = action(product_resource(plan))
    response.status_code = 201
    return response


@api.operation(
    "GET",
    "/products/<productUid>",
    "Get Product",
    query=ProductSelectQuery,
    response=ProductAnswer,
    errors=(404,),
    **_TAGS,
)
def get_product(productUid: str, query):
    """One product, with the ids of its prices."""
    return one(product_resource(_product(productUid)), selected_paths(query.select, PRODUCTS))


@api.operation(
    "PATCH",
    "/products/<productUid>",
    "Modify Product",
    body=ProductPatch,
    response=ProductAction,
    scope="write",
    errors=(404,),
    **_TAGS,
)
def patch_product(productUid: str, body: ProductPatch):
    """Change the fields sent (code, name, description); an archived product is refused."""
    plan = _product(productUid)
    values = {k: getattr(body, k) for k in body.model_fields_set}
    catalog.update_product(db.session, plan, values, token_actor())
    return action(product_resource(plan))


@api.operation(
    "DELETE",
    "/products/<productUid>",
    "Archive Product",
    response=ProductAction,
    scope="write",
    errors=(404,),
    **_TAGS,
)
def delete_product(productUid: str):
    """Archive: hidden from new subscriptions; existing ones keep billing; kept for history."""
    plan = catalog.archive_product(db.session, _product(productUid), token_actor())
    return action(product_resource(plan))


# --- prices ----------------------------------------------------------------------------------


def _price(uid: str) -> Price:
    price = catalog.price_by_uid(db.session, uid)
    if price is None:
        raise not_found(["path", "priceUid"], "Price")
    return price


@api.operation(
    "GET",
    "/prices",
    "Get Prices",
    query=PriceCollectionQuery,
    response=PriceCollection,
    **_TAGS,
)
def get_prices(query):
    """Prices of every product, old versions and archived ones too."""
    return _listing(query, PRICES, Price, price_resource)


@api.operation(
    "POST",
    "/prices",
    "Create Price",
    body=PriceCreate,
    response=PriceAction,
    scope="write",
    status=201,
    errors=(404,),
    **_TAGS,
)
def create_price(body: PriceCreate):
    """A price of a product in any model: flat, per_unit, graduated and volume (``tiers``,
    ``upTo`` increasing, the last one null), package (``packageSize``); licensed or metered
    (with its ``metric``); month or year; tax treatment and exemption reason; selfServe."""
    plan = (
        catalog.product_by_uid(db.session, body.productUid)
        if isinstance(body.productUid, str)
        else None
    )
    if plan is None:
        raise not_found(["body", "/productUid"], "Product")
    price = catalog.create_price(db.session, plan, _values(body, _PRICE_NAMES), token_actor())
    response = action(price_resource(price))
    response.status_code = 201
    return response


@api.operation(
    "GET",
    "/prices/<priceUid>",
    "Get Price",
    query=PriceSelectQuery,
    response=PriceAnswer,
    errors=(404,),
    **_TAGS,
)
def get_price(priceUid: str, query):
    """One price (any version)."""
    return one(price_resource(_price(priceUid)), selected_paths(query.select, PRICES))


@api.operation(
    "PATCH",
    "/prices/<priceUid>",
    "Modify Price",
    body=PricePatch,
    response=PriceAction,
    scope="write",
    errors=(404,),
    **_TAGS,
)
def patch_price(priceUid: str, body: PricePatch):
    """Change the fields sent. A price on an issued invoice is not changed: the answer is
    its new version (``version`` + 1, ``replacesUid`` the old one, which is renamed
    ``<code>@v<version>`` and archived; its subscriptions keep it until changed)."""
    price = catalog.update_price(
        db.session, _price(priceUid), _values(body, _PRICE_NAMES), token_actor()
    )
    return action(price_resource(price))


@api.operation(
    "DELETE",
    "/prices/<priceUid>",
    "Archive Price",
    response=PriceAction,
    scope="write",
    errors=(404,),
    **_TAGS,
)
def delete_price(priceUid: str):
    """Archive: hidden from new subscriptions; existing ones keep billing it."""
    price = catalog.archive_price(db.session, _price(priceUid), token_actor())
    return action(price_resource(price))


# --- coupons ---------------------------------------------------------------------------------


def _coupon(uid: str) -> Coupon:
    coupon = coupon_services.coupon_by_uid(db.session, uid)
    if coupon is None:
        raise not_found(["path", "couponUid"], "Coupon")
    return coupon


@api.operation(
    "GET",
    "/coupons",
    "Get Coupons",
    query=CouponCollectionQuery,
    response=CouponCollection,
    **_TAGS,
)
def get_coupons(query):
    """Coupons of every seller, archived ones too."""
    return _listing(query, COUPONS, Coupon, coupon_resource)


@api.operation(
    "POST",
    "/coupons",
    "Create Coupon",
    body=CouponCreate,
    response=CouponAction,
    scope="write",
    status=201,
    errors=(404,),
    **_TAGS,
)
def create_coupon(body: CouponCreate):
    """A coupon: ``percentOff`` (above 0, at most 100) or ``amountOffMinor`` with its
    ``currency``; ``duration`` once, repeating (``durationPeriods`` invoices) or forever.
    Invoices show it as a document allowance (BG-20), never as a negative line."""
    seller = _seller(body.sellerUid)
    coupon = coupon_services.create_coupon(
        db.session, seller, _values(body, _COUPON_NAMES), token_actor()
    )
    response = action(coupon_resource(coupon))
    response.status_code = 201
    return response


@api.operation(
    "GET",
    "/coupons/<couponUid>",
    "Get Coupon",
    query=CouponSelectQuery,
    response=CouponAnswer,
    errors=(404,),
    **_TAGS,
)
def get_coupon(couponUid: str, query):
    """One coupon."""
    return one(coupon_resource(_coupon(couponUid)), selected_paths(query.select, COUPONS))


@api.operation(
    "DELETE",
    "/coupons/<couponUid>",
    "Archive Coupon",
    response=CouponAction,
    scope="write",
    errors=(404,),
    **_TAGS,
)
def delete_coupon(couponUid: str):
    """Archive: no longer added to subscriptions; where it is, it keeps discounting."""
    coupon = coupon_services.archive_coupon(db.session, _coupon(couponUid), token_actor())
    return action(coupon_resource(coupon))


register_docs(api)
