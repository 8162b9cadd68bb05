"""Reading the audit log and the jobs, for the admin pages and the console API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import parse_public_id
from portal.ops.models import AuditLogEntry, Job
from portal.tenancy.models import Tenant


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log is narrowed to; empty values do not narrow."""

    #: Actions starting with this, e.g. ``invoice.`` or ``invoice.mark_paid``.
    action: str = ""
    #: Part of the actor's label, any case.
    actor: str = ""
    #: Part of the company's name, any case.
    company: str = ""
    #: First and last day (UTC), inclusive.
    since: dt.date | None = None
    until: dt.date | None = None


def audit_page(
    session: Session, filters: AuditFilter, *, page: int, page_size: int
) -> tuple[list[sa.Row], int]:
    """One page of ``(entry, company or None)`` rows, newest first, and the total count."""
    query = sa.select(AuditLogEntry, Tenant).outerjoin(Tenant, Tenant.id == AuditLogEntry.tenant_id)
    if filters.action:
        query = query.where(AuditLogEntry.action.startswith(filters.action, autoescape=True))
    if filters.actor:
        query = query.where(
            sa.func.lower(AuditLogEntry.actor_label).contains(
                filters.actor.lower(), autoescape=True
            )
        )
    if filters.company:
        query = query.where(
            sa.func.lower(Tenant.name).contains(filters.company.lower(), autoescape=True)
        )
    if filters.since:
        start = dt.datetime.combine(filters.since, dt.time(), tzinfo=dt.UTC)
        query = query.where(AuditLogEntry.created_at >= start)
    if filters.until:
        end = dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        query = query.where(AuditLogEntry.created_at < end)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    return list(rows), total


def audit_actions(session: Session) -> list[str]:
    """Every action the log holds, for the filter's choices."""
    return list(
        session.scalars(sa.select(AuditLogEntry.action).distinct().order_by(AuditLogEntry.action))
    )


def recent_jobs(session: Session, *, limit: int, tenant_id: int | None = None) -> list[Job]:
    """The newest jobs first, of one company when ``tenant_id`` is given."""
    query = sa.select(Job).order_by(Job.id.desc()).limit(limit)
    if tenant_id is not None:
        query = query.where(Job.tenant_id == tenant_id)
    return list(session.scalars(query))


def job_by_public_id(session: Session, public_id: Any) -> Job | None:
    """The job with ``public_id`` (text or UUID), or None for an unknown or malformed id."""
    uid = parse_public_id(public_id)
    if uid is None:
        return None
    return session.scalars(sa.select(Job).where(Job.public_id == uid)).first()
