"""Reading plans, prices and subscriptions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import (
    CompanyBillingSettings,
    Coupon,
    Subscription,
    SubscriptionCoupon,
    SubscriptionStatus,
)
from portal.db import scoped
from portal.tenancy.models import Tenant


def company_subscriptions(session: Session, tenant: Tenant) -> list[Subscription]:
    """The company's subscriptions, the newest start first."""
    return list(
        session.scalars(
            sa.select(Subscription)
            .where(Subscription.tenant_id == tenant.id)
            .order_by(Subscription.started_on.desc())
        )
    )


def current_subscription(session: Session, tenant: Tenant) -> Subscription | None:
    """The tenant's first subscription that is not canceled ."""
    return session.scalars(
        scoped(Subscription, tenant)
        .where(Subscription.status != SubscriptionStatus.CANCELED)
        .order_by(Subscription.id)
    ).first()


def stored_company_settings(session: Session, tenant: Tenant) -> CompanyBillingSettings | None:
    """The company's stored billing settings; None when it was never configured."""
    return session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant.id)
    ).first()


def company_settings_list(
    session: Session,
    *,
    where: sa.ColumnElement[bool] | None = None,
    order_by: list[sa.ColumnElement] | tuple[sa.ColumnElement, ...] = (),
    limit: int,
    offset: int = 0,
) -> tuple[list[sa.Row[Any]], int]:
    """One page of every company with its stored billing settings (None: never configured),
    and the total count; filtering, counting, sorting and paging run in SQL.

    :param where: a condition over ``Tenant`` and ``CompanyBillingSettings`` columns.
    :param order_by: sort terms; empty sorts by company name. The company id, ascending,
        always breaks ties, so pages are stable.
    """
    query = sa.select(Tenant, CompanyBillingSettings).outerjoin(
        CompanyBillingSettings, CompanyBillingSettings.tenant_id == Tenant.id
    )
    if where is not None:
        query = query.where(where)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    order = list(order_by) or [Tenant.name.asc()]
    rows = session.execute(
        query.order_by(*order, Tenant.id.asc()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def seller_coupon(session: Session, seller_id: int, code: str) -> Coupon | None:
    """The seller's coupon with this code (codes are unique per seller), archived ones too."""
    return session.scalars(
        sa.select(Coupon).where(Coupon.seller_id == seller_id, Coupon.code == code)
    ).first()


def offered_coupons(session: Session, subscription: Subscription, seller_id: int) -> list[Coupon]:
    """The coupons that could go on ``subscription``: the seller's, not archived, and for a
    fixed amount in the subscription's currency; by code."""
    return list(
        session.scalars(
            sa.select(Coupon)
            .where(
                Coupon.seller_id == seller_id,
                Coupon.archived_at.is_(None),
                sa.or_(Coupon.amount_off_minor.is_(None), Coupon.currency == subscription.currency),
            )
            .order_by(Coupon.code)
        )
    )


def applied_coupon(
    session: Session, subscription: Subscription, coupon: Coupon
) -> SubscriptionCoupon | None:
    """The coupon on ``subscription``: the one in force, else the last one removed; None if
    it was never put on it."""
    return session.scalars(
        sa.select(SubscriptionCoupon)
        .where(
            SubscriptionCoupon.subscription_id == subscription.id,
            SubscriptionCoupon.coupon_id == coupon.id,
        )
        .order_by(SubscriptionCoupon.removed_at.is_not(None), SubscriptionCoupon.id.desc())
    ).first()
