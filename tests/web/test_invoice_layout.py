"""The invoice layout is printed from one set of rows: page, signed link, estimate, PDF."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings
from portal.documents.pdf import document_rows
from portal.extensions import db
from portal.invoices.credit_notes import CreditLine, issue_credit_note
from portal.invoices.estimates import estimate
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.notifications.links import issue_link, token_for
from tests.factories.catalog import subscribe_this_month


def _section(page: str, labelledby: str) -> str:
    """The text of the panel headed by ``labelledby``, tags dropped, spaces collapsed."""
    match = re.search(
        rf'<section class="panel" aria-labelledby="{labelledby}">(.*?)</section>', page, re.S
    )
    assert match, labelledby
    text = html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))
    return " ".join(text.split())


def test_page_and_signed_link_print_the_same_lines_vat_and_totals(client, auth, world, session):
    invoice = world.a.invoice
    # The link page speaks the invoice's language, the tenant page the viewer's.
    world.a.owner.locale = invoice.language or "en"
    # Something credited, so both pages list "Credited" (the link page hides a zero).
    issue_credit_note(
        session,
        invoice,
        reason="Goodwill",
        lines=[CreditLine(invoice.lines[0], Decimal("0.5"))],
        issue_date=dt.date(2026, 10, 5),
    )
    link = issue_link(session, invoice)
    session.commit()
    auth.login(world.a.owner.email)
    tenant_page = client.get(f"/invoices/{invoice.public_id}").get_data(as_text=True)
    link_page = client.get(f"/i/{token_for(link)}").get_data(as_text=True)
    for labelledby in ("lines-title", "vat-title", "totals-title"):
        assert _section(tenant_page, labelledby) == _section(link_page, labelledby)
    totals = _section(link_page, "totals-title")
    assert "Credited" in totals and "Open" in totals
    assert document_rows(invoice).totals.credited_minor > 0


def test_estimate_at_period_end_has_the_rows_of_the_invoice_it_becomes(world, session):
    tenant = world.a.tenant
    settings = session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant.id)
    ).first() or CompanyBillingSettings(tenant_id=tenant.id)
    settings.discount_percent = Decimal(10)  # so both have allowances
    session.add(settings)
    subscription = subscribe_this_month(session, tenant, api_price=Decimal("0.002"))
    start, end = subscription.current_period_start, subscription.current_period_end
    at_end = estimate(session, tenant, dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC))
    [invoice] = generate_invoices(db.session, [tenant], f"{start:%Y-%m}")
    finalize_invoice(db.session, invoice, issue_date=end)
    session.commit()

    projected, issued = document_rows(at_end), document_rows(invoice)
    assert projected.currency == issued.currency
    assert projected.lines == issued.lines
    assert [
        (r.category, r.rate, r.taxable_minor, r.tax_minor, r.exemption_reason, r.exemption_code)
        for r in projected.vat
    ] == [
        (r.category, r.rate, r.taxable_minor, r.tax_minor, r.exemption_reason, r.exemption_code)
        for r in issued.vat
    ]
    assert projected.allowance_charges == issued.allowance_charges != []
    document_totals = ("lines_total_minor", "tax_exclusive_minor", "tax_minor", "amount_due_minor")
    for name in document_totals:
        assert getattr(projected.totals, name) == getattr(issued.totals, name), name
    # Only an invoice is paid and credited.
    assert projected.totals.open_minor is None and issued.totals.open_minor is not None
