"""The Factur-X PDF: PDF/A-3 with factur-x.xml; totals agree in UBL, CII, PDF and database."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pypdf import PdfReader

from portal.documents.einvoice.cii import cii_xml
from portal.documents.einvoice.model import einvoice_data
from portal.documents.einvoice.ubl import ubl_xml
from portal.documents.formats import render_document
from portal.documents.pdf import format_money, render_invoice_pdf
from portal.documents.validation import parse_totals
from portal.extensions import db
from portal.invoices.drafts import DraftLine, create_draft
from portal.invoices.issuing import finalize_invoice
from portal.invoices.states import InvoiceKind, VatCategory
from tests.documents.conftest import pdf_text
from tests.documents.conftest_einvoice import einvoice_seller
from tests.factories.tenancy import BillingProfileFactory, TenantFactory


@pytest.fixture
def app_config(app_config):
    app_config["EINVOICE_VALIDATOR"] = "off"
    return app_config


def test_facturx_pdf_embeds_the_xml_and_declares_pdfa3(scenario, session):
    invoice = scenario("allowance")
    rendered = render_document(session, invoice, "facturx")
    reader = PdfReader(io.BytesIO(rendered.content))
    assert list(reader.attachments) == ["factur-x.xml"]
    cii = reader.attachments["factur-x.xml"][0]
    assert cii == render_document(session, invoice, "cii").content
    catalog = reader.trailer["/Root"]
    # WeasyPrint lists the one file specification twice in /AF (name tree and object walk).
    filespecs = [ref.get_object() for ref in catalog["/AF"]]
    assert {ref.idnum for ref in catalog["/AF"]} and len({f["/UF"] for f in filespecs}) == 1
    filespec = filespecs[0]
    assert filespec["/F"] == filespec["/UF"] == "factur-x.xml"
    assert filespec["/AFRelationship"] in ("/Data", "/Alternative")
    assert filespec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    assert "/OutputIntents" in catalog
    xmp = catalog["/Metadata"].get_object().get_data()
    rdf = etree.fromstring(xmp[xmp.index(b"<x:xmpmeta") : xmp.index(b"</x:xmpmeta>") + 12])
    ns = {
        "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
        "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
    }
    assert rdf.xpath("string(//@pdfaid:part | //pdfaid:part)", namespaces=ns) == "3"
    assert rdf.xpath("string(//fx:DocumentFileName)", namespaces=ns) == "factur-x.xml"
    assert rdf.xpath("string(//fx:DocumentType)", namespaces=ns) == "INVOICE"
    assert rdf.xpath("string(//fx:Version)", namespaces=ns) == "1.0"
    assert rdf.xpath("string(//fx:ConformanceLevel)", namespaces=ns) == "EN 16931"
    assert b"urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#</pdfaSchema:namespaceURI>" in xmp


def test_credit_note_pdf_is_titled_and_worded_as_one(scenario, session, tmp_path):
    note = scenario("credit_note")
    text = pdf_text(render_document(session, note, "facturx").content, tmp_path)
    assert "Credit note" in text
    assert note.invoice.number in text
    assert "Amount credited" in text
    assert format_money(note.amount_due_minor, note.currency, "en") in text


# -- property: the same totals everywhere ------------------------------------------------------

CATEGORY_RATES = st.sampled_from(
    [
        (VatCategory.STANDARD, Decimal(19), None, None),
        (VatCategory.STANDARD, Decimal(7), None, None),
        (VatCategory.REVERSE_CHARGE, Decimal(0), "Reverse charge", "VATEX-EU-AE"),
    ]
)
LINES = st.lists(
    st.tuples(
        st.decimals(min_value=Decimal("0.5"), max_value=Decimal(500), places=2),
        st.decimals(min_value=Decimal(0), max_value=Decimal(2000), places=4),
        CATEGORY_RATES,
    ),
    min_size=1,
    max_size=6,
)


def _money_in(text: str, minor: int, currency: str) -> bool:
    return format_money(minor, currency, "en") in text


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=LINES, currency=st.sampled_from(["EUR", "JPY"]), discount=st.sampled_from([0, 5, 10]))
def test_totals_in_ubl_cii_and_pdf_equal_the_database(app, tmp_path, lines, currency, discount):
    seller = einvoice_seller()
    tenant = TenantFactory(seller=seller, currency=currency)
    BillingProfileFactory(tenant=tenant, currency=currency, vat_id="DE136695976")
    draft_lines = [
        DraftLine(
            f"Item {n}",
            quantity,
            price if currency == "EUR" else price.quantize(Decimal(1)),
            vat_category=category,
            vat_rate=rate,
            vat_exemption_reason=reason,
            vat_exemption_code=code,
        )
        for n, (quantity, price, (category, rate, reason, code)) in enumerate(lines, 1)
    ]
    invoice = create_draft(
        db.session,
        tenant,
        kind=InvoiceKind.MANUAL,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
        lines=draft_lines,
        discount_percent=Decimal(discount),
    )
    finalize_invoice(db.session, invoice, issue_date=dt.date(2026, 11, 1))
    db.session.flush()
    data = einvoice_data(db.session, invoice)
    exponent = data.exponent
    expected = {
        "lines": invoice.lines_total_minor,
        "allowances": invoice.allowance_total_minor,
        "tax_exclusive": invoice.tax_exclusive_minor,
        "tax": invoice.tax_minor,
        "tax_inclusive": invoice.tax_inclusive_minor,
        "due": invoice.amount_due_minor,
        "line_sum": sum(line.net_amount_minor for line in invoice.lines),
    }
    for xml in (ubl_xml(data), ubl_xml(data, "xrechnung"), cii_xml(data)):
        parsed = parse_totals(xml)
        got = {key: int(getattr(parsed, key).scaleb(exponent)) for key in expected}
        assert got == expected
    text = re.sub(r"\s+", " ", pdf_text(render_invoice_pdf(invoice, locale="en"), tmp_path))
    for key in ("lines", "tax_exclusive", "tax", "tax_inclusive", "due"):
        assert _money_in(text, expected[key], currency), (key, expected[key], text)
    db.session.rollback()
