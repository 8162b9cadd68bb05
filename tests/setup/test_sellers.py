"""Sellers: validation, audited create and change, sanitized logos, issued invoices unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import weasyprint  # noqa: F401 (loaded as in the app: it changes a Pillow default)
from PIL import ImageFile

from portal.db import utcnow
from portal.documents.einvoice.cii import cii_xml
from portal.documents.einvoice.model import einvoice_data
from portal.documents.formats import render_document
from portal.documents.pdf import render_invoice_html, render_invoice_pdf
from portal.extensions import db
from portal.invoices.models import DocumentSequence
from portal.invoices.states import DocumentType
from portal.ops.audit import Actor
from portal.ops.models import AuditLogEntry
from portal.tenancy.logos import LOGO_MAX_BYTES, LOGO_MAX_PIXELS, LogoRejected, clean_logo
from portal.tenancy.models import Seller
from portal.tenancy.sellers import (
    SellerInvalid,
    create_seller,
    number_format_problem,
    set_seller_logo,
    update_seller,
)
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory
from tests.setup.logos import (
    BILLION_LAUGHS,
    CLEAN_SVG,
    EXTERNAL_ENTITY,
    MALICIOUS_SVG,
    png,
)

ACTOR = Actor(label="ops@example.com", ip_address="127.0.0.1")

VALID = {
    "legal_name": "Example Cloud GmbH",
    "address_line1": "Torstraße 1",
    "postal_code": "10119",
    "city": "Berlin",
    "country": "de",
    "vat_id": "DE 811 907 980",
    "email": "Billing@Example.COM",
    "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "cobadeffxxx",
    "default_currency": "eur",
    "default_payment_terms_days": "30",
    "invoice_footer": "Thank you.",
    "email_sender_name": "Example Billing",
}


def _counts(session) -> tuple[int, int]:
    return (
        session.scalar(sa.select(sa.func.count()).select_from(Seller)),
        session.scalar(sa.select(sa.func.count()).select_from(AuditLogEntry)),
    )


def test_create_cleans_and_audits(app, session):
    seller = create_seller(session, VALID, ACTOR)
    session.commit()
    assert seller.country == "DE" and seller.vat_id == "DE811907980"
    assert seller.iban == "DE89370400440532013000" and seller.bic == "COBADEFFXXX"
    assert seller.email == "Billing@example.com" and seller.default_currency == "EUR"
    assert seller.default_payment_terms_days == 30
    assert seller.invoice_number_format == "INV-{year}-{seq:05d}"
    entry = session.scalars(sa.select(AuditLogEntry)).one()
    assert entry.action == "seller.create" and entry.target_id == str(seller.public_id)
    assert entry.data["after"]["legal_name"] == "Example Cloud GmbH"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("legal_name", ""),
        ("legal_name", "x" * 201),
        ("legal_name", "Nul\x00Byte"),
        ("city", None),
        ("country", "XX"),
        ("country", "Germany"),
        ("vat_id", "DE123"),
        ("vat_id", "FR40303265045"),  # valid, but not German
        ("email", "not-an-address"),
        ("email", 42),
        ("iban", "DE89 3704 0044 0532 0130 01"),  # check digits off
        ("iban", "XX00"),
        ("bic", "NOTABIC"),
        ("default_currency", "EURO"),
        ("default_currency", "ABC"),
        ("default_currency", "XXX"),
        ("default_payment_terms_days", 366),
        ("default_payment_terms_days", -1),
        ("default_payment_terms_days", True),
        ("default_payment_terms_days", 1.5),
        ("default_payment_terms_days", "ten"),
        ("invoice_number_format", "INV-{seq}"),
        ("invoice_number_format", "{year}-{seq.real}"),
        ("invoice_number_format", "{year}-{seq!r}"),
        ("invoice_number_format", "{year}-{seq:>8}"),
        ("invoice_number_format", "{year}-{seq"),
        ("invoice_number_format", "{year}-{0}"),
        ("invoice_number_format", "INV {year} {seq}"),
        ("invoice_number_format", "INVOICE-NUMBER-{year}-{seq:030d}"),
        ("credit_note_number_format", "INV-{year}-{seq:05d}"),  # the invoices' format
        ("website", "javascript:alert(1)"),
        ("invoice_footer", "x" * 2001),
        ("trading_name", ["a list"]),
        ("unknown_field", "x"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(app, session, field, value):
    before = _counts(session)
    with pytest.raises(SellerInvalid) as caught:
        create_seller(session, {**VALID, field: value}, ACTOR)
    session.rollback()
    assert field in caught.value.errors
    assert _counts(session) == before


def test_every_accepted_number_format_renders_in_numbering(app):
    for pattern in ("INV-{year}-{seq:05d}", "{year}/{seq}", "R{seq:06d}-{year}"):
        assert number_format_problem(pattern) is None
        assert pattern.format(year=2026, seq=7)


def test_update_changes_only_given_fields_and_audits_the_difference(app, session):
    seller = create_seller(session, VALID, ACTOR)
    update_seller(session, seller, {"city": "Hamburg", "postal_code": "20095"}, ACTOR)
    session.commit()
    assert seller.city == "Hamburg" and seller.legal_name == "Example Cloud GmbH"
    entry = session.scalars(
        sa.select(AuditLogEntry).where(AuditLogEntry.action == "seller.update")
    ).one()
    assert entry.data == {
        "before": {"city": "Berlin", "postal_code": "10119"},
        "after": {"city": "Hamburg", "postal_code": "20095"},
    }


def test_update_refused_writes_nothing(app, session):
    seller = create_seller(session, VALID, ACTOR)
    session.commit()
    with pytest.raises(SellerInvalid):
        update_seller(session, seller, {"city": "Hamburg", "iban": "DE00"}, ACTOR)
    session.rollback()
    assert session.get(Seller, seller.id).city == "Berlin"


def test_a_format_that_would_repeat_used_numbers_is_refused(app, session):
    seller = SellerFactory()
    tenant = TenantFactory(seller=seller)
    BillingProfileFactory(tenant=tenant)
    invoice = make_invoice(tenant, issue_date=utcnow().date())
    assert invoice.number == f"INV-{utcnow().year}-00001"
    # An imported history: the sequence starts again where old numbers already exist.
    session.execute(
        sa.update(DocumentSequence)
        .where(DocumentSequence.seller_id == seller.id)
        .where(DocumentSequence.document_type == DocumentType.INVOICE)
        .values(last_number=0)
    )
    with pytest.raises(SellerInvalid) as caught:
        update_seller(session, seller, {"invoice_number_format": "INV-{year}-0{seq:04d}"}, ACTOR)
    assert "invoice_number_format" in caught.value.errors
    update_seller(session, seller, {"invoice_number_format": "RE-{year}-{seq:04d}"}, ACTOR)


# --- logos ---------------------------------------------------------------------------------


def test_png_is_decoded_and_written_again(app, session):
    seller = create_seller(session, VALID, ACTOR)
    set_seller_logo(session, seller, png() + b"<script>trailing</script>", ACTOR)
    assert seller.logo_mime == "image/png" and b"<script>" not in seller.logo
    assert seller.logo.startswith(b"\x89PNG\r\n\x1a\n")
    entry = session.scalars(
        sa.select(AuditLogEntry).where(AuditLogEntry.action == "seller.logo")
    ).one()
    assert entry.data["after"]["logo_sha256"] == seller.logo_sha256
    set_seller_logo(session, seller, None, ACTOR)
    assert seller.logo is None and seller.logo_mime is None


def test_malicious_svg_is_stripped(app):
    cleaned, mime = clean_logo(MALICIOUS_SVG)
    text = cleaned.decode("utf-8")
    assert mime == "image/svg+xml"
    for bad in ("script", "onload", "onclick", "foreignObject", "javascript:", "evil.example",
                "tracker.example", "<image", "<style", "<a ", "@import"):  # fmt: skip
        assert bad not in text, bad
    assert "<circle" in text and 'fill="#c00"' in text and "<rect" in text
    assert clean_logo(cleaned)[0] == cleaned  # sanitizing is stable


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"GIF89a\x01\x00\x01\x00",
        b"\xff\xd8\xff\xe0 a jpeg",
        b"<html><body>hi</body></html>",
        b"%PDF-1.7",
        png()[:60],  # a truncated PNG: the signature alone is not enough
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b"<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>",
        b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'/>",
        b"<svg xmlns='http://www.w3.org/2000/svg'>" + b"<g>" * 100 + b"</g>" * 100 + b"</svg>",
        b"<svg xmlns='http://www.w3.org/2000/svg'>" + b" " * LOGO_MAX_BYTES + b"</svg>",
    ],
)
def test_invalid_or_oversize_logos_are_refused(app, session, content):
    seller = create_seller(session, VALID, ACTOR)
    session.commit()
    with pytest.raises(SellerInvalid) as caught:
        set_seller_logo(session, seller, content, ACTOR)
    session.rollback()
    assert "logo" in caught.value.errors
    assert session.get(Seller, seller.id).logo is None


def test_cut_off_png_is_refused_even_once_weasyprint_is_loaded():
    # WeasyPrint sets Pillow's LOAD_TRUNCATED_IMAGES when imported: every app process has it.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    whole = png(300, 200)
    for cut in (whole[:-12], whole[:-30], whole[:100]):
        with pytest.raises(LogoRejected):
            clean_logo(cut)
    assert clean_logo(whole)[1] == "image/png"


def test_png_too_many_pixels_is_refused():
    with pytest.raises(LogoRejected):
        clean_logo(png(LOGO_MAX_PIXELS + 1, 1))


def test_clean_svg_is_kept():
    cleaned, mime = clean_logo(CLEAN_SVG)
    assert mime == "image/svg+xml" and b"<text" in cleaned and b"Logo" in cleaned


# --- an issued invoice does not change --------------------------------------------------------


def test_issued_invoice_keeps_seller_data_pdf_and_xml_after_an_edit(app, session):
    seller = SellerFactory(legal_name="Old Name GmbH", invoice_footer="Old footer")
    tenant = TenantFactory(seller=seller)
    BillingProfileFactory(tenant=tenant)
    invoice = make_invoice(tenant)
    session.commit()
    snapshot = dict(invoice.seller_snapshot)
    html = render_invoice_html(invoice, locale="en")
    pdf = render_invoice_pdf(invoice, locale="de")
    xml = cii_xml(einvoice_data(session, invoice))
    stored = render_document(session, invoice, "pdf", "en").content
    session.commit()

    update_seller(
        session,
        seller,
        {
            "legal_name": "New Name AG",
            "address_line1": "Neue Straße 9",
            "iban": "FR14 2004 1010 0505 0001 3M02 606",
            "bic": "PSSTFRPPLIL",
            "invoice_footer": "New footer",
            "vat_id": "DE136695976",
        },
        ACTOR,
    )
    set_seller_logo(session, seller, png(), ACTOR)
    session.commit()
    session.expire_all()

    assert invoice.seller_snapshot == snapshot
    assert render_invoice_html(invoice, locale="en") == html
    assert render_invoice_pdf(invoice, locale="de") == pdf  # rendered anew, byte-identical
    assert cii_xml(einvoice_data(session, invoice)) == xml
    assert render_document(session, invoice, "pdf", "en").content == stored
    assert "Old Name GmbH" in html and "New Name AG" not in html

    october = {"period_start": dt.date(2026, 10, 1), "period_end": dt.date(2026, 10, 31)}
    later = make_invoice(tenant, **october)
    later_html = render_invoice_html(later, locale="en")
    assert "New Name AG" in later_html and "New footer" in later_html
    assert 'class="logo"' in later_html  # finalized with the logo: it prints it
    assert 'class="logo"' not in render_invoice_html(invoice, locale="en")
    db.session.rollback()
