"""What the invoice PDF embeds: two font faces and the EPC QR code as a small PNG."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest

from portal.documents.epc import epc_payload, epc_qr_png_data_uri
from portal.documents.pdf import render_invoice_html, render_invoice_pdf
from tests.factories.invoices import make_invoice


def test_qr_png_is_cached_per_payload():
    payload = epc_payload(
        name="Northwind Cloud GmbH",
        iban="DE89370400440532013000",
        amount_minor=9708,
        currency="EUR",
        reference="NW-2026-00043",
    )
    uri = epc_qr_png_data_uri(payload)
    assert uri.startswith("data:image/png;base64,")
    assert epc_qr_png_data_uri(payload) is uri


@pytest.mark.skipif(shutil.which("pdffonts") is None, reason="needs poppler-utils")
def test_pdf_uses_one_family_in_two_faces(app, world, session, tmp_path):
    # Every face is one more font to subset when the PDF is written: regular and bold only.
    seller = world.a.tenant.seller
    seller.iban, seller.bic = "DE89370400440532013000", "COBADEFFXXX"
    invoice = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    session.commit()
    assert "data:image/png;base64," in render_invoice_html(invoice, locale="en")  # the QR
    path = tmp_path / "invoice.pdf"
    path.write_bytes(render_invoice_pdf(invoice, locale="en"))
    listing = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True, text=True)
    faces = {line.split()[0].split("+")[-1] for line in listing.stdout.splitlines()[2:]}
    assert faces == {"DejaVu-Sans", "DejaVu-Sans-Bold"}
