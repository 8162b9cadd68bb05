"""The audit log page: who did what to which object, when, with before and after."""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _

from portal.extensions import db
from portal.ops.queries import AuditFilter, audit_actions, audit_page
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
    action = args.get("action", "").strip()[:60]
    actor = args.get("actor", "").strip()[:254]
    company = args.get("company", "").strip()[:100]
    since, ok_since = parse_date(args.get("since"))
    until, ok_until = parse_date(args.get("until"))
    if not (ok_since and ok_until):
        messages.append(_("Dates must look like 2026-10-31."))
    page = positive_int(args.get("page"), 1)
    if page is None:
        messages.append(_("Pages are numbered from 1."))
        page = 1
    rows, total = audit_page(
        db.session,
        AuditFilter(action=action, actor=actor, company=company, since=since, until=until),
        page=page,
        page_size=PAGE_SIZE,
    )
    actions = audit_actions(db.session)
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
