"""The upcoming invoice: the estimate of the current period, refreshed while open."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, g

from portal.db import utcnow
from portal.documents.pdf import document_rows
from portal.extensions import db
from portal.invoices.estimates import estimate
from portal.usage.queries import quota_usage_report
from portal.web.formatting import number
from portal.web.guards import tenant_view
from portal.web.htmx import render_page

bp = Blueprint("upcoming", __name__)

#: How often the open page refreshes its figures (htmx polling).
REFRESH_SECONDS = 60

#: Number formats of the estimate's lines (components/invoice_layout.html): projected
#: quantities are fractional, so they are cut to two decimals; unit prices are plain
#: numbers with at least two decimals, without the currency.
ESTIMATE_FORMATTING = {
    "fmt_quantity": lambda value: number(value, 0, 2),
    "fmt_unit_price": lambda value, currency: number(value, 2),
}


@bp.get("/upcoming")
@tenant_view()
def index():
    """The estimate with its lines, usage against quotas and the projection."""
    now = utcnow()
    result = estimate(db.session, g.tenant, now)
    quotas = []
    if result is not None:
        start = dt.datetime.combine(result.period_start, dt.time(), tzinfo=dt.UTC)
        quotas = quota_usage_report(db.session, [g.tenant.id], start, now)
    return render_page(
        "upcoming/page.html",
        "upcoming/_estimate.html",
        upcoming=result,
        rows=document_rows(result) if result is not None else None,
        quotas=quotas,
        refreshed_at=now,
        refresh_seconds=REFRESH_SECONDS,
        **ESTIMATE_FORMATTING,
    )
