"""The admin console for the operator's staff."""

from __future__ import annotations

from flask import Blueprint

from portal.extensions import db
from portal.tenancy.queries import tenant_summaries
from portal.web.guards import admin_view
from portal.web.htmx import render_page

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@admin_view
def index():
    """All tenants with members and open amounts."""
    return render_page("admin/index.html", summaries=tenant_summaries(db.session))
