"""Read-side queries across tenants, for the admin console."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import parse_public_id
from portal.domain.money import Money
from portal.invoices.models import Invoice
from portal.invoices.states import OPEN_STATUSES
from portal.tenancy.models import Membership, Seller, Tenant


@dataclass(frozen=True)
class TenantSummary:
    tenant: Tenant
    members: int
    open: Money
    open_invoices: int


def tenant_summaries(session: Session) -> list[TenantSummary]:
    """Every tenant with member count and open amount, in two aggregate queries."""
    members = dict(
        session.execute(
            sa.select(Membership.tenant_id, sa.func.count()).group_by(Membership.tenant_id)
        )
        .tuples()
        .all()
    )
    open_rows = {
        tenant_id: (total, count)
        for tenant_id, total, count in session.execute(
            sa.select(
                Invoice.tenant_id,
                sa.func.sum(
                    Invoice.amount_due_minor
                    - Invoice.amount_paid_minor
                    - Invoice.amount_credited_minor
                ),
                sa.func.count(),
            )
            .where(Invoice.status.in_(OPEN_STATUSES))
            .group_by(Invoice.tenant_id)
        )
    }
    summaries = []
    for tenant in session.scalars(sa.select(Tenant).order_by(Tenant.name)):
        total, count = open_rows.get(tenant.id, (0, 0))
        summaries.append(
            TenantSummary(
                tenant=tenant,
                members=members.get(tenant.id, 0),
                open=Money(int(total or 0), tenant.currency),
                open_invoices=int(count),
            )
        )
    return summaries


def tenants_by_id(session: Session, ids: Iterable[int]) -> dict[int, Tenant]:
    """The companies of ``ids``, by id (unknown ids are left out)."""
    ids = set(ids)
    if not ids:
        return {}
    return {t.id: t for t in session.scalars(sa.select(Tenant).where(Tenant.id.in_(ids)))}


def tenant_by_public_id(session: Session, public_id: Any) -> Tenant | None:
    """The company with ``public_id`` (text or UUID), or None for an unknown or malformed id."""
    uid = parse_public_id(public_id)
    if uid is None:
        return None
    return session.scalars(sa.select(Tenant).where(Tenant.public_id == uid)).first()


def seller_by_public_id(session: Session, public_id: Any) -> Seller | None:
    """The seller with ``public_id`` (text or UUID), or None for an unknown or malformed id."""
    uid = parse_public_id(public_id)
    if uid is None:
        return None
    return session.scalars(sa.select(Seller).where(Seller.public_id == uid)).first()


def seller_tenant(session: Session, seller: Seller, public_id: Any) -> Tenant | None:
    """The seller's company with ``public_id``; None for another seller's or an unknown one."""
    uid = parse_public_id(public_id)
    if uid is None:
        return None
    return session.scalars(
        sa.select(Tenant).where(Tenant.public_id == uid, Tenant.seller_id == seller.id)
    ).first()
