"""The audit log page: who did what to which object, when, with before and after."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import request
from flask_babel import gettext as _

from portal.extensions import db
from portal.ops.models import AuditLogEntry
from portal.tenancy.models import Tenant
from portal.web.admin.blueprint import bp
from portal.web.admin.common import parse_date, positive_int
from portal.web.guards import admin_view
from portal.web.htmx import render_page

PAGE_SIZE = 50


def changes(data: dict) -> list[tuple[str, object, object]]:
    """(field, before, after) for every value that differs, or every value when one side
    is missing (a creation or a deletion)."""
    before = data.get("before") or {}
    after = data.get("after") or {}
    keys = list(dict.fromkeys([*before, *after]))
    if before and after:
        keys = [k for k in keys if before.get(k) != after.get(k)]
    return [(k, before.get(k, "–"), after.get(k, "–")) for k in keys]


@bp.get("/audit")
@admin_view
def audit():
    """The append-only audit log, newest first, filterable by action, actor, company, dates."""
    args = request.args
    messages = []
    query = sa.select(AuditLogEntry, Tenant).outerjoin(Tenant, Tenant.id == AuditLogEntry.tenant_id)
    action = args.get("action", "").strip()[:60]
    if action:
        query = query.where(AuditLogEntry.action.startswith(action, autoescape=True))
    actor = args.get("actor", "").strip()[:254]
    if actor:
        query = query.where(
            sa.func.lower(AuditLogEntry.actor_label).contains(actor.lower(), autoescape=True)
        )
    company = args.get("company", "").strip()[:100]
    if company:
        query = query.where(sa.func.lower(Tenant.name).contains(company.lower(), autoescape=True))
    since, ok_since = parse_date(args.get("since"))
    until, ok_until = parse_date(args.get("until"))
    if not (ok_since and ok_until):
        messages.append(_("Dates must look like 2026-10-31."))
    if since:
        query = query.where(
            AuditLogEntry.created_at >= dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
        )
    if until:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        query = query.where(AuditLogEntry.created_at < end)
    page = positive_int(args.get("page"), 1)
    if page is None:
        messages.append(_("Pages are numbered from 1."))
        page = 1
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = db.session.execute(
        query.order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    actions = db.session.scalars(
        sa.select(AuditLogEntry.action).distinct().order_by(AuditLogEntry.action)
    ).all()
    filters = {
        "action": action,
        "actor": actor,
        "company": company,
        "since": since.isoformat() if since else "",
        "until": until.isoformat() if until else "",
    }
    return render_page(
        "admin/audit.html",
        "admin/_audit_list.html",
        rows=rows,
        total=total,
        page_number=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        filters=filters,
        query_args={k: v for k, v in filters.items() if v},
        actions=actions,
        messages=messages,
        changes=changes,
    )
