"""The catalog: products (plans) and their prices in every model the engine prices.

A price that an issued invoice used is never changed: editing it makes a new version
(``version`` + 1, ``replaces_id`` → the old one), and the old one is renamed
``<code>@v<version>`` and archived, so the issued invoice keeps pointing at the terms it
was computed with and subscriptions on it keep billing them until they are changed. A price
no issued invoice used is edited in place. Archiving hides a product or price from new
subscriptions; existing ones keep billing. Services lock, validate, flush and audit; they
never commit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from babel.numbers import list_currencies
from sqlalchemy.orm import Session, selectinload

from portal.catalog.models import (
    BillingInterval,
    Plan,
    Price,
    PriceModel,
    PriceTier,
    SubscriptionItem,
    TaxTreatment,
    UsageKind,
)
from portal.db import lock, utcnow
from portal.domain.money import currency_exponent
from portal.domain.pricing import InvalidPrice, PriceSpec, Tier
from portal.invoices.models import Invoice, InvoiceLine
from portal.invoices.states import InvoiceStatus
from portal.ops.audit import N_, Actor, record_audit
from portal.tenancy.models import Seller


class CatalogInvalid(Exception):
    """Catalog input (a product, price or coupon) that is refused; nothing was written."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        #: Field name → English message (pages translate it).
        self.errors = errors


# Limits: what the columns hold on both databases (SQLite stores exact decimals as scaled
# 64-bit integers, so a unit price with 10 decimals must stay below about 9.2e8).
CODE_MAX = 60
PRICE_CODE_MAX = 64  # leaves room for the "@v<version>" of an archived version (80)
NAME_MAX = 200
DESCRIPTION_MAX = 5000
EXEMPTION_MAX = 300
AMOUNT_LIMIT = Decimal(10) ** 8  # unit amounts, major units, exclusive
QUANTITY_LIMIT = Decimal(10) ** 12  # tier bounds and package sizes, exclusive
TIERS_MAX = 50
TRIAL_DAYS_MAX = 730
INTERVAL_COUNT_MAX = {BillingInterval.MONTH: 36, BillingInterval.YEAR: 5}

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_METRIC = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_UNIT_CODE = re.compile(r"^[A-Z0-9]{1,3}$")
CURRENCIES = frozenset(code for code in list_currencies() if len(code) == 3 and code.isalpha())


# -- field checks (each raises ValueError with an English message) -------------------------


def clean_text(value: Any, *, required: bool, limit: int, what: str = "text") -> str | None:
    """Stripped text of at most ``limit`` characters, without NUL or lone surrogates."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(N_("Enter text."))
    if any(char == "\x00" or "\ud800" <= char <= "\udfff" for char in value):
        # PostgreSQL refuses a NUL in text; a lone surrogate cannot be encoded.
        raise ValueError(N_("Remove the NUL or invalid characters."))
    value = value.strip()
    if not value:
        if required:
            raise ValueError(N_("This field is required."))
        return None
    if len(value) > limit:
        raise ValueError(N_("Too long."))
    return value


def clean_code(value: Any, limit: int = CODE_MAX) -> str:
    """A code: letters, digits, dot, dash and underscore, starting with a letter or digit."""
    text = clean_text(value, required=True, limit=limit)
    if not _CODE.match(text or ""):
        raise ValueError(N_("Use letters, digits, '.', '-' and '_' only."))
    return text  # type: ignore[return-value]


def clean_currency(value: Any) -> str:
    """An ISO 4217 currency code (upper case)."""
    if not isinstance(value, str) or value.strip().upper() not in CURRENCIES:
        raise ValueError(N_("Enter an ISO 4217 currency code such as EUR."))
    return value.strip().upper()


def clean_decimal(
    value: Any, *, places: int, limit: Decimal, positive: bool = False, required: bool = True
) -> Decimal | None:
    """A finite decimal in [0, limit) (or (0, limit)) with at most ``places`` decimals."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(N_("This field is required."))
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(N_("Enter a number."))
    try:
        # A float from JSON goes through its shortest text form, never its binary value.
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise ValueError(N_("Enter a number.")) from None
    if not number.is_finite():
        raise ValueError(N_("Enter a number."))
    if number < 0 or (positive and number == 0):
        raise ValueError(
            N_("Enter a positive number.") if positive else N_("Must not be negative.")
        )
    if number >= limit:
        raise ValueError(N_("Too large."))
    if number != number.quantize(Decimal(1).scaleb(-places)):
        raise ValueError(N_("Too many decimal places."))
    return number.quantize(Decimal(1).scaleb(-places))


def clean_int(value: Any, low: int, high: int) -> int:
    """A whole number in [low, high] from an int or digit string."""
    if isinstance(value, bool) or isinstance(value, float) or value is None:
        raise ValueError(N_("Enter a whole number."))
    if isinstance(value, str):
        try:
            value = int(value.strip() or "x")
        except ValueError:
            raise ValueError(N_("Enter a whole number.")) from None
    if not isinstance(value, int):
        raise ValueError(N_("Enter a whole number."))
    if not low <= value <= high:
        raise ValueError(N_("Out of range."))
    return value


def clean_bool(value: Any) -> bool:
    """A boolean (forms send "on"/"true"/"1" or nothing)."""
    if isinstance(value, bool):
        return value
    if value is None or value in ("", "0", "false", "off"):
        return False
    if value in ("1", "true", "on", "yes"):
        return True
    raise ValueError(N_("Enter true or false."))


def clean_choice(value: Any, enum: type) -> Any:
    """A member of ``enum`` given by its value."""
    try:
        return enum(value)
    except (ValueError, TypeError):
        raise ValueError(N_("Choose one of the offered values.")) from None


def _check(errors: dict[str, str], clean: dict[str, Any], name: str, check, value: Any) -> None:
    try:
        clean[name] = check(value)
    except ValueError as exc:
        errors[name] = str(exc)


def _unknown(values: Mapping[str, Any], allowed: Any, errors: dict[str, str]) -> None:
    for name in values:
        if name not in allowed:
            errors[str(name)[:60]] = N_("Unknown field.")


# -- products ---------------------------------------------------------------------------------

PRODUCT_FIELDS = ("code", "name", "description")


def product_dict(plan: Plan) -> dict[str, Any]:
    """The product as JSON-safe values (audit entries)."""
    return {
        "code": plan.code,
        "name": plan.name,
        "description": plan.description,
        "archived": plan.archived_at is not None,
    }


def validate_product(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check a complete product.

    :raise CatalogInvalid: one message per wrong, missing or unknown field.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    _unknown(values, PRODUCT_FIELDS, errors)
    _check(errors, clean, "code", clean_code, values.get("code"))
    _check(
        errors,
        clean,
        "name",
        lambda v: clean_text(v, required=True, limit=NAME_MAX),
        values.get("name"),
    )
    _check(
        errors,
        clean,
        "description",
        lambda v: clean_text(v, required=False, limit=DESCRIPTION_MAX),
        values.get("description"),
    )
    if errors:
        raise CatalogInvalid(errors)
    return clean


def _code_taken(session: Session, seller_id: int, code: str, but: int | None = None) -> bool:
    query = sa.select(Plan.id).where(Plan.seller_id == seller_id, Plan.code == code)
    if but is not None:
        query = query.where(Plan.id != but)
    return session.scalar(query) is not None


def create_product(
    session: Session, seller: Seller, values: Mapping[str, Any], actor: Actor
) -> Plan:
    """A new product of ``seller``.

    :raise CatalogInvalid: for wrong fields or a code the seller already uses.
    """
    clean = validate_product(values)
    lock(session, seller)  # serializes the seller's new codes; the unique key backs it
    if _code_taken(session, seller.id, clean["code"]):
        raise CatalogInvalid({"code": N_("A product with this code exists already.")})
    plan = Plan(seller_id=seller.id, is_active=True, **clean)
    session.add(plan)
    session.flush()
    record_audit(
        session,
        actor,
        "product.create",
        "product",
        str(plan.public_id),
        tenant_id=None,
        after=product_dict(plan),
    )
    return plan


def update_product(session: Session, plan: Plan, values: Mapping[str, Any], actor: Actor) -> Plan:
    """Change some of a product's fields (the others keep their values).

    :raise CatalogInvalid: for wrong fields, a taken code or an archived product.
    """
    if "code" in values:
        # Codes are unique per seller: a rename takes the seller's lock (parent first), as
        # creation does, so two products renamed to one code at once are checked in turn.
        lock(session, session.get_one(Seller, plan.seller_id))
    lock(session, plan)
    if plan.archived_at is not None:
        raise CatalogInvalid({"product": N_("The product is archived.")})
    before = product_dict(plan)
    merged = {name: getattr(plan, name) for name in PRODUCT_FIELDS}
    merged.update(values)
    clean = validate_product(merged)
    if clean["code"] != plan.code and _code_taken(session, plan.seller_id, clean["code"], plan.id):
        raise CatalogInvalid({"code": N_("A product with this code exists already.")})
    for name, value in clean.items():
        setattr(plan, name, value)
    session.flush()
    record_audit(
        session,
        actor,
        "product.update",
        "product",
        str(plan.public_id),
        tenant_id=None,
        before=before,
        after=product_dict(plan),
    )
    return plan


def archive_product(session: Session, plan: Plan, actor: Actor) -> Plan:
    """Hide the product and its prices from new subscriptions; existing ones keep billing.

    Archiving an archived product changes nothing.
    """
    lock(session, plan)
    if plan.archived_at is not None:
        return plan
    before = product_dict(plan)
    plan.archived_at = utcnow()
    plan.is_active = False
    session.flush()
    record_audit(
        session,
        actor,
        "product.archive",
        "product",
        str(plan.public_id),
        tenant_id=None,
        before=before,
        after=product_dict(plan),
    )
    return plan


# -- prices -----------------------------------------------------------------------------------

PRICE_FIELDS = (
    "code",
    "nickname",
    "currency",
    "model",
    "usage_kind",
    "metric",
    "interval",
    "interval_count",
    "unit_amount",
    "package_size",
    "unit_code",
    "trial_days",
    "tax_treatment",
    "vat_exemption_reason",
    "self_serve",
    "tiers",
)
TIER_FIELDS = ("up_to", "unit_amount", "flat_amount")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def price_dict(price: Price) -> dict[str, Any]:
    """The price's editable fields as JSON-safe values (decimals as strings)."""
    return {
        "code": price.code,
        "nickname": price.nickname,
        "currency": price.currency,
        "model": price.model.value,
        "usage_kind": price.usage_kind.value,
        "metric": price.metric,
        "interval": price.interval.value,
        "interval_count": price.interval_count,
        "unit_amount": _text(price.unit_amount),
        "package_size": _text(price.package_size),
        "unit_code": price.unit_code,
        "trial_days": price.trial_days,
        "tax_treatment": price.tax_treatment.value,
        "vat_exemption_reason": price.vat_exemption_reason,
        "self_serve": price.self_serve,
        "tiers": [
            {
                "up_to": _text(tier.up_to),
                "unit_amount": _text(tier.unit_amount),
                "flat_amount": _text(tier.flat_amount),
            }
            for tier in price.tiers
        ],
    }


def _audit_price(price: Price) -> dict[str, Any]:
    return {
        **price_dict(price),
        "version": price.version,
        "archived": price.archived_at is not None,
    }


def _amount(value: Any) -> Decimal | None:
    return clean_decimal(value, places=10, limit=AMOUNT_LIMIT)


def _tiers(value: Any, errors: dict[str, str]) -> list[dict[str, Any]]:
    """Tiers in order: ``up_to`` positive and strictly increasing, the last one open."""
    if not isinstance(value, (list, tuple)):
        errors["tiers"] = N_("Enter the tiers as a list.")
        return []
    if not value:
        errors["tiers"] = N_("Add at least one tier.")
        return []
    if len(value) > TIERS_MAX:
        errors["tiers"] = N_("Too many tiers (at most 50).")
        return []
    tiers = []
    lower = Decimal(0)
    for index, raw in enumerate(value):
        prefix = f"tiers.{index}"
        if not isinstance(raw, Mapping):
            errors[prefix] = N_("Enter each tier with up_to, unit_amount and flat_amount.")
            continue
        _unknown({f"{prefix}.{k}": v for k, v in raw.items() if k not in TIER_FIELDS}, (), errors)
        tier: dict[str, Any] = {}
        last = index == len(value) - 1
        try:
            tier["up_to"] = clean_decimal(
                raw.get("up_to"), places=6, limit=QUANTITY_LIMIT, positive=True, required=False
            )
            if last and tier["up_to"] is not None:
                raise ValueError(N_("The last tier has no upper bound: leave it empty."))
            if not last and tier["up_to"] is None:
                raise ValueError(N_("Only the last tier may be open-ended."))
            if tier["up_to"] is not None:
                if tier["up_to"] <= lower:
                    raise ValueError(N_("Each bound must be greater than the one before."))
                lower = tier["up_to"]
        except ValueError as exc:
            errors[f"{prefix}.up_to"] = str(exc)
        for name in ("unit_amount", "flat_amount"):
            try:
                tier[name] = clean_decimal(
                    raw.get(name), places=10, limit=AMOUNT_LIMIT, required=False
                ) or Decimal(0)
            except ValueError as exc:
                errors[f"{prefix}.{name}"] = str(exc)
        tiers.append(tier)
    return tiers


def validate_price(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check a complete price and drop what its model does not use.

    :raise CatalogInvalid: one message per wrong, missing or unknown field (tiers as
        ``tiers.<index>.<field>``).
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    _unknown(values, PRICE_FIELDS, errors)
    _check(errors, clean, "code", lambda v: clean_code(v, PRICE_CODE_MAX), values.get("code"))
    _check(
        errors,
        clean,
        "nickname",
        lambda v: clean_text(v, required=True, limit=NAME_MAX),
        values.get("nickname"),
    )
    _check(errors, clean, "currency", clean_currency, values.get("currency"))
    _check(errors, clean, "model", lambda v: clean_choice(v, PriceModel), values.get("model"))
    _check(
        errors,
        clean,
        "usage_kind",
        lambda v: clean_choice(v or UsageKind.LICENSED.value, UsageKind),
        values.get("usage_kind"),
    )
    _check(
        errors,
        clean,
        "interval",
        lambda v: clean_choice(v or BillingInterval.MONTH.value, BillingInterval),
        values.get("interval"),
    )
    interval = clean.get("interval", BillingInterval.MONTH)
    _check(
        errors,
        clean,
        "interval_count",
        lambda v: clean_int(1 if v in (None, "") else v, 1, INTERVAL_COUNT_MAX[interval]),
        values.get("interval_count"),
    )
    _check(
        errors,
        clean,
        "unit_code",
        lambda v: _unit_code(v or "C62"),
        values.get("unit_code"),
    )
    _check(
        errors,
        clean,
        "trial_days",
        lambda v: clean_int(0 if v in (None, "") else v, 0, TRIAL_DAYS_MAX),
        values.get("trial_days"),
    )
    _check(
        errors,
        clean,
        "tax_treatment",
        lambda v: clean_choice(v or TaxTreatment.SERVICES.value, TaxTreatment),
        values.get("tax_treatment"),
    )
    _check(
        errors,
        clean,
        "vat_exemption_reason",
        lambda v: clean_text(v, required=False, limit=EXEMPTION_MAX),
        values.get("vat_exemption_reason"),
    )
    _check(errors, clean, "self_serve", clean_bool, values.get("self_serve"))
    model = clean.get("model")
    usage_kind = clean.get("usage_kind")
    clean["metric"] = None
    if usage_kind == UsageKind.METERED:
        try:
            metric = clean_text(values.get("metric"), required=True, limit=60)
            if not _METRIC.match(metric or ""):
                raise ValueError(N_("Use lower-case letters, digits, '.', '-' and '_' only."))
            clean["metric"] = metric
        except ValueError as exc:
            errors["metric"] = (
                N_("A metered price needs the metric it is billed on.")
                if str(exc) == N_("This field is required.")
                else str(exc)
            )
        if model == PriceModel.FLAT:
            errors["usage_kind"] = N_("A flat fee is licensed, not metered.")
    clean["unit_amount"] = clean["package_size"] = None
    clean["tiers"] = []
    if model in (PriceModel.GRADUATED, PriceModel.VOLUME):
        clean["tiers"] = _tiers(values.get("tiers"), errors)
    elif model is not None:
        _check(errors, clean, "unit_amount", _amount, values.get("unit_amount"))
        if model == PriceModel.PACKAGE:
            try:
                clean["package_size"] = clean_decimal(
                    values.get("package_size"), places=6, limit=QUANTITY_LIMIT, positive=True
                )
            except ValueError as exc:
                errors["package_size"] = (
                    N_("A package price needs its package size.")
                    if str(exc) == N_("This field is required.")
                    else str(exc)
                )
    if not errors and model is not None:
        try:  # the engine's own checks, so that every stored price can be billed
            PriceSpec(
                model=model.value,
                currency=clean["currency"],
                unit_amount=clean["unit_amount"],
                tiers=tuple(Tier(**tier) for tier in clean["tiers"]),
                package_size=clean["package_size"],
                name=clean["nickname"],
            )
        except (InvalidPrice, TypeError) as exc:
            errors["model"] = str(exc)
    if errors:
        raise CatalogInvalid(errors)
    return clean


def _unit_code(value: Any) -> str:
    if not isinstance(value, str) or not _UNIT_CODE.match(value.strip().upper()):
        raise ValueError(N_("Enter a UN/ECE Recommendation 20 unit code such as C62 or HUR."))
    return value.strip().upper()


def _price_code_taken(session: Session, plan_id: int, code: str, but: int | None = None) -> bool:
    query = sa.select(Price.id).where(Price.plan_id == plan_id, Price.code == code)
    if but is not None:
        query = query.where(Price.id != but)
    return session.scalar(query) is not None


def _apply(session: Session, price: Price, clean: Mapping[str, Any]) -> None:
    for name, value in clean.items():
        if name != "tiers":
            setattr(price, name, value)
    if price.id is not None and price.tiers:
        # The old tiers go first: the unit of work would insert the new ones before the
        # deletes, and (price_id, position) is unique.
        price.tiers = []
        session.flush()
    price.tiers = [
        PriceTier(position=position, **tier) for position, tier in enumerate(clean["tiers"])
    ]


def create_price(session: Session, plan: Plan, values: Mapping[str, Any], actor: Actor) -> Price:
    """A new price of ``plan`` (version 1).

    :raise CatalogInvalid: for wrong fields, a code the product uses, an archived product.
    """
    clean = validate_price(values)
    lock(session, plan)  # serializes the product's new codes; the unique key backs it
    if plan.archived_at is not None:
        raise CatalogInvalid({"product": N_("The product is archived.")})
    if _price_code_taken(session, plan.id, clean["code"]):
        raise CatalogInvalid({"code": N_("This product has a price with this code already.")})
    price = Price(plan_id=plan.id, version=1, is_active=True)
    _apply(session, price, clean)
    session.add(price)
    session.flush()
    record_audit(
        session,
        actor,
        "price.create",
        "price",
        str(price.public_id),
        tenant_id=None,
        after=_audit_price(price),
    )
    return price


def price_invoiced(session: Session, price: Price) -> bool:
    """Whether an issued (not draft) invoice has a line of this price."""
    return (
        session.scalar(
            sa.select(InvoiceLine.id)
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(InvoiceLine.price_id == price.id, Invoice.status != InvoiceStatus.DRAFT)
            .limit(1)
        )
        is not None
    )


def update_price(session: Session, price: Price, values: Mapping[str, Any], actor: Actor) -> Price:
    """Change some of a price's fields (the others keep their values).

    A price that an issued invoice used is not changed: a new version takes its code and
    the new terms, and this one is renamed ``<code>@v<version>`` and archived (its
    subscriptions keep it until they are changed). Returns the price that now has the
    terms: ``price`` itself, or its new version.

    :raise CatalogInvalid: for wrong fields, a taken code, an archived price, or a
        currency change of a price that subscriptions use.
    """
    # Codes are unique per product, and an edit may take one (a rename, or the new version
    # taking over the code): the product's lock first, as creation takes it, so concurrent
    # edits of its prices check the codes in turn instead of failing on the unique key.
    lock(session, session.get_one(Plan, price.plan_id))
    lock(session, price)
    if price.archived_at is not None:
        raise CatalogInvalid({"price": N_("The price is archived; edit its current version.")})
    before = _audit_price(price)
    merged = price_dict(price)
    merged.update(values)
    clean = validate_price(merged)
    if clean["code"] != price.code and _price_code_taken(
        session, price.plan_id, clean["code"], price.id
    ):
        raise CatalogInvalid({"code": N_("This product has a price with this code already.")})
    if not price_invoiced(session, price):
        if clean["currency"] != price.currency and session.scalar(
            sa.select(SubscriptionItem.id).where(SubscriptionItem.price_id == price.id).limit(1)
        ):
            raise CatalogInvalid(
                {"currency": N_("Subscriptions use this price: its currency cannot change.")}
            )
        _apply(session, price, clean)
        session.flush()
        record_audit(
            session,
            actor,
            "price.update",
            "price",
            str(price.public_id),
            tenant_id=None,
            before=before,
            after=_audit_price(price),
        )
        return price
    # Frees the code for the new version (unique per product) before it is inserted.
    price.code = f"{price.code}@v{price.version}"
    price.archived_at = utcnow()
    price.is_active = False
    session.flush()
    new = Price(plan_id=price.plan_id, version=price.version + 1, replaces_id=price.id)
    new.is_active = True
    _apply(session, new, clean)
    session.add(new)
    session.flush()
    record_audit(
        session,
        actor,
        "price.version",
        "price",
        str(new.public_id),
        tenant_id=None,
        before={**before, "price": str(price.public_id)},
        after=_audit_price(new),
    )
    return new


def archive_price(session: Session, price: Price, actor: Actor) -> Price:
    """Hide the price from new subscriptions; existing ones keep billing it.

    Archiving an archived price changes nothing.
    """
    lock(session, price)
    if price.archived_at is not None:
        return price
    before = _audit_price(price)
    price.archived_at = utcnow()
    price.is_active = False
    session.flush()
    record_audit(
        session,
        actor,
        "price.archive",
        "price",
        str(price.public_id),
        tenant_id=None,
        before=before,
        after=_audit_price(price),
    )
    return price


# -- queries ----------------------------------------------------------------------------------


def price_available(price: Price) -> bool:
    """Whether new subscriptions may use the price (it and its product not archived)."""
    return (
        price.archived_at is None
        and price.is_active
        and price.plan.archived_at is None
        and price.plan.is_active
    )


def find_products(
    session: Session,
    *,
    search: str = "",
    seller_id: int | None = None,
    include_archived: bool = True,
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[Plan], int]:
    """Products matching ``search`` (code or name), newest first, and how many match."""
    query = sa.select(Plan)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(Plan.code.ilike(pattern, escape="\\"), Plan.name.ilike(pattern, escape="\\"))
        )
    if seller_id is not None:
        query = query.where(Plan.seller_id == seller_id)
    if not include_archived:
        query = query.where(Plan.archived_at.is_(None))
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Plan.id.desc())
        .limit(limit)
        .offset(offset)
        .options(selectinload(Plan.prices))
    ).all()
    return list(rows), total


def product_by_uid(session: Session, uid: Any) -> Plan | None:
    """The product with this public id, or None (also for a malformed id)."""
    return _by_uid(session, Plan, uid)


def price_by_uid(session: Session, uid: Any) -> Price | None:
    """The price with this public id, or None (also for a malformed id)."""
    return _by_uid(session, Price, uid)


def _by_uid(session: Session, model: Any, uid: Any) -> Any:
    try:
        value = uid if isinstance(uid, uuid.UUID) else uuid.UUID(str(uid))
    except (ValueError, TypeError, AttributeError):
        return None
    return session.scalars(sa.select(model).where(model.public_id == value)).first()


def catalog_list(
    session: Session,
    model: Any,
    *,
    where: Any = None,
    order_by: list | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Any], int]:
    """Products, prices or coupons (``model``) matching ``where``, in ``order_by`` (then
    newest first), one page, and how many match. ``where`` and ``order_by`` may use the
    seller's columns (and a price's product's)."""
    query = sa.select(model)
    if model is Price:
        query = query.join(Plan, Plan.id == Price.plan_id).join(Seller, Seller.id == Plan.seller_id)
    else:
        query = query.join(Seller, Seller.id == model.seller_id)
    if where is not None:
        query = query.where(where)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(*(order_by or []), model.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def all_sellers(session: Session) -> list[Seller]:
    """Every seller, by name (the forms' choice of seller)."""
    return list(session.scalars(sa.select(Seller).order_by(Seller.legal_name, Seller.id)))


def seller_by_uid(session: Session, uid: Any) -> Seller | None:
    """The seller with this public id, or None (also for a malformed id)."""
    return _by_uid(session, Seller, uid)


def money_from_text(text: str, currency: str) -> int:
    """An amount in major units ("10.00", "10,5") as minor units of ``currency``.

    :raise ValueError: for text that is not such an amount (or an unknown currency).
    """
    try:
        number = Decimal(str(text).strip().replace(",", "."))
        exponent = currency_exponent(clean_currency(currency))
    except (InvalidOperation, ValueError):
        raise ValueError(N_("Enter an amount.")) from None
    if not number.is_finite() or number != number.quantize(Decimal(1).scaleb(-exponent)):
        raise ValueError(N_("Enter an amount."))
    return int(number.scaleb(exponent))
