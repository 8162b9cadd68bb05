"""The billing overview: the landing page after login."""

from __future__ import annotations

from flask import Blueprint, g
from flask_babel import get_locale

from portal.catalog.self_service import subscription_notices
from portal.db import utcnow
from portal.extensions import db
from portal.invoices.estimates import estimate
from portal.invoices.queries import open_amounts, recent_invoices
from portal.invoices.spend import monthly_spend
from portal.payments.methods import default_method, method_warning
from portal.web.guards import tenant_view
from portal.web.htmx import render_page
from portal.web.overview.chart import spend_chart

bp = Blueprint("overview", __name__)


@bp.get("/")
@tenant_view()
def index():
    """What the tenant owes, what comes next, how it pays, and its latest invoices."""
    now = utcnow()
    today = now.date()
    method = default_method(db.session, g.tenant)
    return render_page(
        "overview/page.html",
        amounts=open_amounts(db.session, g.tenant, today),
        invoices=recent_invoices(db.session, g.tenant),
        upcoming=estimate(db.session, g.tenant, now),
        method=method,
        method_warning=method_warning(method, today) if method else None,
        chart=spend_chart(monthly_spend(db.session, g.tenant, today), str(get_locale())),
        today=today,
        notices=subscription_notices(db.session, g.tenant, today),
    )
