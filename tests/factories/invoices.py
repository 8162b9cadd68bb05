"""Builders of invoices through the real services (so totals and numbers are right)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from portal.extensions import db
from portal.invoices.drafts import DraftLine, create_draft
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, VatCategory
from portal.tenancy.models import Tenant


def make_invoice(
    tenant: Tenant,
    *,
    period_start: dt.date = dt.date(2026, 9, 1),
    period_end: dt.date = dt.date(2026, 9, 30),
    lines: list[DraftLine] | None = None,
    finalize: bool = True,
    issue_date: dt.date | None = None,
    kind: InvoiceKind = InvoiceKind.SUBSCRIPTION,
) -> Invoice:
    """A subscription invoice with two lines at 19 % VAT, finalized by default."""
    lines = lines or [
        DraftLine(
            "Platform",
            Decimal(1),
            Decimal("49.00"),
            vat_category=VatCategory.STANDARD,
            vat_rate=Decimal(19),
        ),
        DraftLine(
            "Seats",
            Decimal(3),
            Decimal("12.50"),
            vat_category=VatCategory.STANDARD,
            vat_rate=Decimal(19),
        ),
    ]
    invoice = create_draft(
        db.session,
        tenant,
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        lines=lines,
    )
    if finalize:
        finalize_invoice(
            db.session, invoice, issue_date=issue_date or period_end + dt.timedelta(days=1)
        )
    return invoice
