"""Invoice PDFs: what they say, in which language, on how many pages."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from PIL import Image

from portal.documents.pdf import (
    country_name,
    css_string,
    document_locale,
    format_quantity,
    format_rate,
    format_unit_price,
    invoice_filename,
    render_invoice_html,
    render_invoice_pdf,
)
from portal.invoices.drafts import DraftLine
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, LineKind, VatCategory
from tests.documents.conftest import pdf_pages, pdf_text
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory


@pytest.fixture
def seller(app):
    return SellerFactory(
        legal_name="Nimbus Cloud Services GmbH",
        registration="HRB 123456 B, Amtsgericht Charlottenburg",
        bank_name="Commerzbank",
        invoice_footer="Managing directors: Jane Doe",
    )


@pytest.fixture
def tenant(seller, session):
    tenant = TenantFactory(seller=seller, name="Alpha Industries B.V.")
    BillingProfileFactory(
        tenant=tenant,
        company_name="Alpha Industries B.V.",
        address_line1="Keizersgracht 123",
        postal_code="1015 CJ",
        city="Amsterdam",
        country="NL",
        vat_id="NL123456789B01",
    )
    session.commit()
    return tenant


def _reverse_charge_lines(count: int = 1) -> list[DraftLine]:
    return [
        DraftLine(
            f"Compute hours, cluster {n}",
            Decimal(10 * n),
            Decimal("0.0850"),
            kind=LineKind.USAGE,
            vat_category=VatCategory.REVERSE_CHARGE,
            vat_rate=Decimal(0),
            vat_exemption_reason="Reverse charge",
            vat_exemption_code="VATEX-EU-AE",
        )
        for n in range(1, count + 1)
    ]


def test_pdf_has_number_parties_dates_totals_and_payment(tenant, session, tmp_path):
    invoice = make_invoice(tenant)  # 49.00 + 3 × 12.50 at 19 %: 86.50 + 16.44 = 102.94
    session.commit()
    pdf = render_invoice_pdf(invoice, locale="en")
    assert pdf.startswith(b"%PDF")
    text = " ".join(pdf_text(pdf, tmp_path).split())  # lines wrap in the footer columns
    for expected in (
        "Invoice",
        invoice.number,
        "Nimbus Cloud Services GmbH",
        "Friedrichstraße 1",
        "DE811907980",  # seller VAT ID
        "HRB 123456 B, Amtsgericht Charlottenburg",
        "Alpha Industries B.V.",
        "Keizersgracht 123",
        "Netherlands",
        "NL123456789B01",
        "Oct 1, 2026",  # issue date
        "Oct 15, 2026",  # due date
        "Sep 1, 2026 – Sep 30, 2026",  # service period
        "Platform",
        "Seats",
        "€12.50",
        "Standard rate (S)",
        "19%",
        "€86.50",
        "€16.44",
        "€102.94",
        "DE89370400440532013000",  # IBAN
        "COBADEFFXXX",  # BIC
        "Commerzbank",
        "Managing directors: Jane Doe",
        "Page 1 of 1",
    ):
        assert expected in text, expected
    # The reference of the transfer is the invoice number.
    layout = pdf_text(pdf, tmp_path, layout=True)
    assert any("Reference" in line and invoice.number in line for line in layout.splitlines())
    assert "DRAFT" not in text


def test_reverse_charge_invoice_names_the_exemption(tenant, session, tmp_path):
    invoice = make_invoice(tenant, lines=_reverse_charge_lines(2))
    session.commit()
    text = pdf_text(render_invoice_pdf(invoice, locale="en"), tmp_path)
    assert "Reverse charge (AE)" in text
    assert "VATEX-EU-AE" in text
    assert "€2.55" in text  # 0.85 + 1.70, no VAT
    assert "€0.085" in text  # a unit price keeps its extra decimals


def test_long_invoices_number_their_pages(tenant, session, tmp_path):
    invoice = make_invoice(tenant, lines=_reverse_charge_lines(40))
    session.commit()
    pdf = render_invoice_pdf(invoice, locale="en")
    pages = pdf_pages(pdf, tmp_path)
    assert pages >= 2
    text = pdf_text(pdf, tmp_path)
    for page in range(1, pages + 1):
        assert f"Page {page} of {pages}" in text
    # The footer with the seller's bank details is on every page.
    assert text.count("Nimbus Cloud Services GmbH") >= pages
    # The lines' header repeats on the next page.
    assert text.count("UNIT PRICE") >= 2


def test_amounts_and_dates_follow_the_locale(tenant, session, tmp_path):
    invoice = make_invoice(tenant)
    session.commit()
    text = pdf_text(render_invoice_pdf(invoice, locale="de"), tmp_path)
    assert "102,94 €" in text.replace("\xa0", " ")
    assert "01.10.2026" in text
    assert "Niederlande" in text


def test_draft_is_marked_and_uses_live_data(tenant, session, tmp_path):
    draft = make_invoice(tenant, finalize=False, kind=InvoiceKind.MANUAL)
    session.commit()
    text = pdf_text(render_invoice_pdf(draft, locale="en"), tmp_path)
    assert "DRAFT" in text
    assert "Draft invoice" in text
    assert "Alpha Industries B.V." in text and "Nimbus Cloud Services GmbH" in text
    assert "DE89370400440532013000" in text  # footer from the live seller
    assert invoice_filename(draft) == f"draft-{draft.public_id}.pdf"


def test_logo_is_embedded_without_fetching_anything(tenant, seller, session, tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (120, 40), (59, 79, 216)).save(buffer, format="PNG")
    seller.logo, seller.logo_mime = buffer.getvalue(), "image/png"
    seller.legal_name = 'Evil <img src="http://127.0.0.1:9/x.png"> Corp'
    session.commit()
    invoice = make_invoice(tenant)
    session.commit()
    html = render_invoice_html(invoice, locale="en")
    assert "data:image/png;base64," in html
    assert '<img src="http://' not in html  # the name is text, escaped
    assert render_invoice_pdf(invoice, locale="en").startswith(b"%PDF")


def test_helpers():
    assert document_locale("de") == "de"
    assert document_locale("pt-BR") == "pt_BR"
    assert document_locale("xx-nope") == "en"
    assert document_locale(None) == "en"
    assert format_quantity(Decimal("3.000000"), "en") == "3"
    assert format_quantity(Decimal("1234.5"), "de") == "1.234,5"
    assert format_unit_price(Decimal("12.5000000000"), "EUR", "en") == "€12.50"
    assert format_unit_price(Decimal("0.0015"), "EUR", "en") == "€0.0015"
    assert format_unit_price(Decimal("1500"), "JPY", "en") == "¥1,500"
    assert format_rate(Decimal("19.0000"), "en") == "19%"
    assert format_rate(Decimal("7.7000"), "de").replace("\xa0", " ") == "7,7 %"
    assert country_name("DE", "en") == "Germany"
    assert country_name("", "en") == ""
    assert str(css_string('a "b" </style>')) == '"a \\"b\\" \\3C /style\\3E "'


def test_filename_is_safe():
    assert invoice_filename(Invoice(number="INV-2026-00001")) == "INV-2026-00001.pdf"
    assert invoice_filename(Invoice(number="2026/0001 ä")) == "2026-0001.pdf"
    assert invoice_filename(Invoice(number="../../etc/passwd")) == "etc-passwd.pdf"


def test_rendering_does_not_change_the_invoice(tenant, session):
    invoice = make_invoice(tenant, issue_date=dt.date(2026, 10, 1))
    session.commit()
    render_invoice_pdf(invoice, locale="en")
    assert not session.dirty
