"""Read-side queries across tenants, for the admin console."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import CompanyBillingSettings
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
) -> tuple[list[sa.Row[tuple[Tenant, CompanyBillingSettings | None]]], int]:
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
