"""Saved payment methods of a tenant: listing, the default, removal, expiry warnings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import lock, scoped, utcnow
from portal.payments.models import PaymentMethod, PaymentMethodStatus
from portal.tenancy.models import Tenant

EXPIRY_WARNING_DAYS = 30


class PaymentMethodRefused(ValueError):
    """The method cannot take this change (inactive, or not yet confirmed)."""


def usable_methods(session: Session, tenant: Tenant) -> list[PaymentMethod]:
    """Active and pending methods, the default first, then newest first."""
    return list(
        session.scalars(
            scoped(PaymentMethod, tenant)
            .where(PaymentMethod.status != PaymentMethodStatus.INACTIVE)
            .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id.desc())
        )
    )


def default_method(session: Session, tenant: Tenant) -> PaymentMethod | None:
    return session.scalars(
        scoped(PaymentMethod, tenant).where(PaymentMethod.is_default.is_(True))
    ).first()


def card_expiry(method: PaymentMethod) -> dt.date | None:
    """The last day a card can be charged, or None for methods without expiry."""
    if method.exp_month is None or method.exp_year is None:
        return None
    first_of_next = dt.date(method.exp_year + method.exp_month // 12, method.exp_month % 12 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


@dataclass(frozen=True)
class MethodWarning:
    """Why a method needs the tenant's attention."""

    code: str  # "expired", "expires_soon", "revoked"
    on: dt.date | None = None


def method_warning(method: PaymentMethod, today: dt.date) -> MethodWarning | None:
    """An expired or soon-expiring card, or a revoked mandate (inactive at the provider)."""
    if method.status == PaymentMethodStatus.INACTIVE:
        return MethodWarning(
            "revoked", method.deactivated_at.date() if method.deactivated_at else None
        )
    expiry = card_expiry(method)
    if expiry is None:
        return None
    if expiry < today:
        return MethodWarning("expired", expiry)
    if expiry <= today + dt.timedelta(days=EXPIRY_WARNING_DAYS):
        return MethodWarning("expires_soon", expiry)
    return None


def set_default_method(session: Session, tenant: Tenant, method: PaymentMethod) -> PaymentMethod:
    """Make ``method`` the one charged automatically.

    Changes of the default are serialized per tenant (the tenant's row is locked), so two
    at once leave exactly one default instead of failing on the one-default index.

    :raise PaymentMethodRefused: unless the method is active.
    """
    lock(session, tenant)
    lock(session, method)
    if method.status != PaymentMethodStatus.ACTIVE:
        raise PaymentMethodRefused("only an active method can be the default")
    session.execute(
        sa.update(PaymentMethod)
        .where(
            PaymentMethod.tenant_id == tenant.id,
            PaymentMethod.id != method.id,
            PaymentMethod.is_default.is_(True),
        )
        .values(is_default=False)
    )
    session.flush()  # the one-default index must see the old default cleared first
    method.is_default = True
    session.flush()
    return method


def remove_method(session: Session, tenant: Tenant, method: PaymentMethod) -> PaymentMethod:
    """Deactivate a method (it is kept for the payments that used it).

    :raise PaymentMethodRefused: when it is already removed (checked under lock).
    """
    lock(session, method)
    if method.status == PaymentMethodStatus.INACTIVE:
        raise PaymentMethodRefused("this payment method is already removed")
    method.status = PaymentMethodStatus.INACTIVE
    method.is_default = False
    method.deactivated_at = utcnow()
    session.flush()
    return method
