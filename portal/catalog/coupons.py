"""Coupons: create and archive them, put them on subscriptions and take them off, and count
the invoices that used them.

An invoice applies its subscriptions' coupons as document allowances (BG-20), never as
negative lines (see :func:`portal.invoices.generation.coupon_allowance_rows`).
``periods_used`` is derived, never incremented: when invoices are finalized it is recounted
from the issued invoices that carry the coupon's allowance, under the row's lock, so the
same invoice never counts twice and two transactions finalizing at once both end counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import Coupon, CouponDuration, Subscription, SubscriptionCoupon
from portal.catalog.products import (
    CODE_MAX,
    NAME_MAX,
    CatalogInvalid,
    _by_uid,
    _check,
    _unknown,
    clean_choice,
    clean_code,
    clean_currency,
    clean_decimal,
    clean_int,
    clean_text,
)
from portal.db import lock, utcnow
from portal.invoices.generation import COUPON_REASON_CODE, coupon_applies, coupon_reason
from portal.invoices.models import Invoice, InvoiceAllowanceCharge
from portal.invoices.states import InvoiceStatus
from portal.ops.audit import N_, Actor, record_audit
from portal.tenancy.models import Seller, Tenant

COUPON_FIELDS = (
    "code",
    "name",
    "percent_off",
    "amount_off_minor",
    "currency",
    "duration",
    "duration_periods",
)
#: Largest fixed amount off, minor units (fits every column on both databases).
AMOUNT_OFF_MAX = 10**12
PERIODS_MAX = 120


#: The refusal of a coupon the company has already (a state, not bad input: the API's 409).
ALREADY_APPLIED = N_("The company has this coupon already.")


def coupon_dict(coupon: Coupon) -> dict[str, Any]:
    """The coupon as JSON-safe values (audit entries)."""
    return {
        "code": coupon.code,
        "name": coupon.name,
        "percent_off": None
        if coupon.percent_off is None
        else format(coupon.percent_off.normalize(), "f"),
        "amount_off_minor": coupon.amount_off_minor,
        "currency": coupon.currency,
        "duration": coupon.duration.value,
        "duration_periods": coupon.duration_periods,
        "archived": coupon.archived_at is not None,
    }


def _percent(value: Any) -> Decimal:
    number = clean_decimal(value, places=4, limit=Decimal("100.0001"), positive=True)
    assert number is not None
    if number > 100:
        raise ValueError(N_("Enter a percentage above 0 and at most 100."))
    return number


def validate_coupon(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check a complete coupon: a percentage (0 < p ≤ 100) or an amount and its currency.

    :raise CatalogInvalid: one message per wrong, missing or unknown field.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    _unknown(values, COUPON_FIELDS, errors)
    _check(errors, clean, "code", lambda v: clean_code(v, CODE_MAX), values.get("code"))
    _check(
        errors,
        clean,
        "name",
        lambda v: clean_text(v, required=True, limit=NAME_MAX),
        values.get("name"),
    )
    percent = values.get("percent_off")
    amount = values.get("amount_off_minor")
    has_percent = percent not in (None, "")
    has_amount = amount not in (None, "")
    clean["percent_off"] = clean["amount_off_minor"] = clean["currency"] = None
    if has_percent == has_amount:
        errors["percent_off"] = N_("Give either a percentage or a fixed amount.")
    elif has_percent:
        try:
            clean["percent_off"] = _percent(percent)
        except ValueError as exc:
            errors["percent_off"] = (
                N_("Enter a percentage above 0 and at most 100.")
                if str(exc) in (N_("Too large."), N_("Enter a positive number."))
                else str(exc)
            )
        if values.get("currency") not in (None, ""):
            errors["currency"] = N_("A percentage coupon has no currency.")
    else:
        _check(
            errors,
            clean,
            "amount_off_minor",
            lambda v: clean_int(v, 1, AMOUNT_OFF_MAX),
            amount,
        )
        if errors.get("amount_off_minor") == N_("Out of range."):
            errors["amount_off_minor"] = N_("Enter a positive amount in minor units.")
        _check(errors, clean, "currency", clean_currency, values.get("currency"))
    _check(
        errors,
        clean,
        "duration",
        lambda v: clean_choice(v or CouponDuration.ONCE.value, CouponDuration),
        values.get("duration"),
    )
    clean["duration_periods"] = None
    if clean.get("duration") == CouponDuration.REPEATING:
        _check(
            errors,
            clean,
            "duration_periods",
            lambda v: clean_int(v, 1, PERIODS_MAX),
            values.get("duration_periods"),
        )
        if errors.get("duration_periods") in (N_("Out of range."), N_("Enter a whole number.")):
            errors["duration_periods"] = N_("Enter how many invoices it discounts (1 to 120).")
    if errors:
        raise CatalogInvalid(errors)
    return clean


def create_coupon(
    session: Session, seller: Seller, values: Mapping[str, Any], actor: Actor
) -> Coupon:
    """A new coupon of ``seller``.

    :raise CatalogInvalid: for wrong fields or a code the seller already uses.
    """
    clean = validate_coupon(values)
    lock(session, seller)  # serializes the seller's new codes; the unique key backs it
    if session.scalar(
        sa.select(Coupon.id).where(Coupon.seller_id == seller.id, Coupon.code == clean["code"])
    ):
        raise CatalogInvalid({"code": N_("A coupon with this code exists already.")})
    coupon = Coupon(seller_id=seller.id, **clean)
    session.add(coupon)
    session.flush()
    record_audit(
        session,
        actor,
        "coupon.create",
        "coupon",
        str(coupon.public_id),
        tenant_id=None,
        after=coupon_dict(coupon),
    )
    return coupon


def archive_coupon(session: Session, coupon: Coupon, actor: Actor) -> Coupon:
    """No longer offered to subscriptions; where it is, it keeps discounting.

    Archiving an archived coupon changes nothing.
    """
    lock(session, coupon)
    if coupon.archived_at is not None:
        return coupon
    before = coupon_dict(coupon)
    coupon.archived_at = utcnow()
    session.flush()
    record_audit(
        session,
        actor,
        "coupon.archive",
        "coupon",
        str(coupon.public_id),
        tenant_id=None,
        before=before,
        after=coupon_dict(coupon),
    )
    return coupon


def _applied_dict(applied: SubscriptionCoupon, coupon: Coupon) -> dict[str, Any]:
    return {
        "coupon": coupon.code,
        "applied_at": applied.applied_at.isoformat() if applied.applied_at else None,
        "periods_used": applied.periods_used,
        "removed_at": applied.removed_at.isoformat() if applied.removed_at else None,
    }


def add_coupon(
    session: Session, subscription: Subscription, coupon: Coupon, actor: Actor
) -> SubscriptionCoupon:
    """Put ``coupon`` on ``subscription``: it discounts the invoices from the next one on.

    :raise CatalogInvalid: for an archived coupon, another seller's, a fixed amount in
        another currency, a canceled subscription, or a coupon the company has already.
    """
    # The rule is one coupon per company, not per subscription: the company's row is locked
    # (before the subscription's, parent first), so two of its subscriptions taking the
    # coupon at once wait for each other and the second sees the first.
    tenant = session.get(Tenant, subscription.tenant_id)
    if tenant is not None:
        lock(session, tenant)
    lock(session, subscription)
    lock(session, coupon)  # an archiving that commits first is seen
    if coupon.archived_at is not None:
        raise CatalogInvalid({"coupon": N_("The coupon is archived.")})
    if tenant is None or coupon.seller_id != tenant.seller_id:
        raise CatalogInvalid({"coupon": N_("Unknown coupon.")})
    if coupon.amount_off_minor is not None and coupon.currency != subscription.currency:
        raise CatalogInvalid(
            {"coupon": N_("The coupon's currency is not the subscription's currency.")}
        )
    if subscription.canceled_at is not None or subscription.status == "canceled":
        raise CatalogInvalid({"subscription": N_("The subscription is canceled.")})
    # One coupon once per company: its invoices are counted by the allowance they carry.
    if session.scalar(
        sa.select(SubscriptionCoupon.id).where(
            SubscriptionCoupon.tenant_id == subscription.tenant_id,
            SubscriptionCoupon.coupon_id == coupon.id,
            SubscriptionCoupon.removed_at.is_(None),
        )
    ):
        raise CatalogInvalid({"coupon": ALREADY_APPLIED})
    applied = SubscriptionCoupon(
        tenant_id=subscription.tenant_id,
        subscription_id=subscription.id,
        coupon_id=coupon.id,
        applied_at=utcnow(),
        periods_used=0,
    )
    session.add(applied)
    session.flush()
    record_audit(
        session,
        actor,
        "subscription.coupon_add",
        "subscription",
        str(subscription.public_id),
        tenant_id=subscription.tenant_id,
        after=_applied_dict(applied, coupon),
    )
    return applied


def remove_coupon(
    session: Session, applied: SubscriptionCoupon, actor: Actor
) -> SubscriptionCoupon:
    """Take a coupon off its subscription: it discounts no invoice planned afterwards.

    Removing a removed coupon changes nothing.
    """
    lock(session, applied)
    if applied.removed_at is not None:
        return applied
    coupon = session.get_one(Coupon, applied.coupon_id)
    before = _applied_dict(applied, coupon)
    applied.removed_at = utcnow()
    session.flush()
    subscription = session.get(Subscription, applied.subscription_id)
    record_audit(
        session,
        actor,
        "subscription.coupon_remove",
        "subscription",
        str(subscription.public_id) if subscription else None,
        tenant_id=applied.tenant_id,
        before=before,
        after=_applied_dict(applied, coupon),
    )
    return applied


def subscription_coupons(
    session: Session, subscription: Subscription
) -> list[tuple[SubscriptionCoupon, Coupon, bool]]:
    """The subscription's coupons (removed ones too), each with whether it still applies."""
    rows = session.execute(
        sa.select(SubscriptionCoupon, Coupon)
        .join(Coupon, Coupon.id == SubscriptionCoupon.coupon_id)
        .where(SubscriptionCoupon.subscription_id == subscription.id)
        .order_by(SubscriptionCoupon.id)
    ).all()
    return [(applied, coupon, coupon_applies(coupon, applied)) for applied, coupon in rows]


def find_coupons(
    session: Session,
    *,
    search: str = "",
    seller_id: int | None = None,
    include_archived: bool = True,
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[Coupon], int]:
    """Coupons matching ``search`` (code or name), newest first, and how many match."""
    query = sa.select(Coupon)
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(Coupon.code.ilike(pattern, escape="\\"), Coupon.name.ilike(pattern, escape="\\"))
        )
    if seller_id is not None:
        query = query.where(Coupon.seller_id == seller_id)
    if not include_archived:
        query = query.where(Coupon.archived_at.is_(None))
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Coupon.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def coupon_by_uid(session: Session, uid: Any) -> Coupon | None:
    """The coupon with this public id, or None (also for a malformed id)."""
    return _by_uid(session, Coupon, uid)


# -- counting the invoices that used a coupon ------------------------------------------------


def count_coupon_uses(
    session: Session, applied: SubscriptionCoupon, coupon: Coupon, finalizing: Iterable[int] = ()
) -> int:
    """How many issued invoices of the company carry this coupon's allowance, counting
    those in ``finalizing`` (being finalized in this flush) as issued; each invoice once.
    Only invoices created while the coupon was on the subscription count."""
    finalizing = list(finalizing)
    issued = Invoice.status != InvoiceStatus.DRAFT
    if finalizing:
        issued = sa.or_(issued, Invoice.id.in_(finalizing))
    query = (
        sa.select(sa.func.count(sa.distinct(Invoice.id)))
        .join(InvoiceAllowanceCharge, InvoiceAllowanceCharge.invoice_id == Invoice.id)
        .where(
            Invoice.tenant_id == applied.tenant_id,
            issued,
            InvoiceAllowanceCharge.is_charge.is_(False),
            InvoiceAllowanceCharge.reason == coupon_reason(coupon.code, coupon.name),
            InvoiceAllowanceCharge.reason_code == COUPON_REASON_CODE,
            Invoice.created_at >= applied.applied_at,
        )
    )
    if applied.removed_at is not None:
        query = query.where(Invoice.created_at <= applied.removed_at)
    return int(session.scalar(query) or 0)


def recount_coupon_uses(session: Session, invoice_ids: Iterable[int]) -> None:
    """Recount ``periods_used`` of the coupons that the invoices being finalized carry.

    Each affected row is locked first and then counted in a statement of its own, so a
    concurrent finalization waits and then counts what the first one committed.
    """
    invoice_ids = list(invoice_ids)
    if not invoice_ids:
        return
    reasons = set(
        session.execute(
            sa.select(Invoice.tenant_id, InvoiceAllowanceCharge.reason)
            .join(InvoiceAllowanceCharge, InvoiceAllowanceCharge.invoice_id == Invoice.id)
            .where(
                Invoice.id.in_(invoice_ids),
                InvoiceAllowanceCharge.is_charge.is_(False),
                InvoiceAllowanceCharge.reason_code == COUPON_REASON_CODE,
            )
        ).all()
    )
    if not reasons:
        return
    tenant_ids = {tenant_id for tenant_id, _ in reasons}
    candidates = session.execute(
        sa.select(SubscriptionCoupon, Coupon)
        .join(Coupon, Coupon.id == SubscriptionCoupon.coupon_id)
        .where(SubscriptionCoupon.tenant_id.in_(tenant_ids))
        .order_by(SubscriptionCoupon.id)  # one lock order for every transaction
    ).all()
    for applied, coupon in candidates:
        if (applied.tenant_id, coupon_reason(coupon.code, coupon.name)) not in reasons:
            continue
        lock(session, applied)
        used = count_coupon_uses(session, applied, coupon, invoice_ids)
        if used != applied.periods_used:
            applied.periods_used = used


def on_invoices_finalized(session: Session, invoice_ids: list[int]) -> None:
    """Receiver of :data:`~portal.invoices.signals.invoices_finalized`: recount the coupons
    of those invoices in the same transaction."""
    recount_coupon_uses(session, invoice_ids)
