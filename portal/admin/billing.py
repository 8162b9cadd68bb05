"""Billing work shared by the admin services and their background tasks."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import CompanyBillingSettings
from portal.db import lock
from portal.invoices.generation import generate_invoices, month_period
from portal.invoices.models import Invoice
from portal.invoices.services import finalize_invoice
from portal.invoices.states import InvoiceStatus
from portal.tenancy.models import Tenant
from portal.usage.queries import quota_usage_report

#: Columns of the quota usage report, in CSV order.
REPORT_COLUMNS = ("company", "metric", "limit", "used", "percent", "over", "is_hard")


def bill_month(session: Session, tenant: Tenant, month: str) -> list[Invoice]:
    """Generate the company's invoices of ``month`` and finalize them unless its settings
    ask for review (``auto_finalize`` off), as the invoice run does.

    Idempotent: an invoice that exists for the period is returned as it is. Concurrent
    calls for one company wait for each other on the company's row, so the second finds
    the first one's invoices instead of failing on the one-invoice-per-period constraint.
    """
    lock(session, tenant)
    _, month_end = month_period(month)
    settings = session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant.id)
    ).first()
    auto_finalize = settings is None or settings.auto_finalize
    invoices = generate_invoices(session, [tenant], month, issue_date=month_end)
    for invoice in invoices:
        if auto_finalize and invoice.status == InvoiceStatus.DRAFT:
            finalize_invoice(session, invoice, issue_date=month_end)
    session.flush()
    return invoices


def _decimal_text(value: Decimal | None) -> str | None:
    """A Decimal as plain text without exponent or trailing zeros (``"12.5"``)."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text


def quota_report_rows(
    session: Session, tenant: Tenant, start: dt.date, end: dt.date
) -> list[dict[str, str | bool | None]]:
    """Usage in [start, end] against each quota, as JSON-safe rows (decimals as text)."""
    start_at = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    end_at = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return [
        {
            "company": str(tenant.public_id),
            "metric": row.metric,
            "limit": _decimal_text(row.limit),
            "used": _decimal_text(row.used),
            "percent": _decimal_text(row.percent),
            "over": row.over,
            "is_hard": row.is_hard,
        }
        for row in quota_usage_report(session, [tenant.id], start_at, end_at)
    ]


def rows_csv(rows: list[dict]) -> str:
    """The report rows as CSV text with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row[key] is None else row[key] for key in REPORT_COLUMNS})
    return out.getvalue()
