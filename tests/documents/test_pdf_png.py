"""The invoice PDF rendered to PNG with pdftoppm, kept under artifacts/ for people to look at.

The test checks what a glance would: one A4 page, ink where the content is, and the QR code
of the transfer in the payment box; the PNG stays for a human review after every run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from portal.documents.formats import render_document

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "documents"

pytestmark = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils")


def _png(pdf: bytes, name: str, tmp_path: Path) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    source = tmp_path / f"{name}.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", "-singlefile", str(source), str(ARTIFACTS / name)],
        check=True,
        timeout=60,
    )
    return ARTIFACTS / f"{name}.png"


def _ink(image: Image.Image, box: tuple[float, float, float, float]) -> float:
    """Share of dark pixels in ``box`` (fractions of width and height)."""
    width, height = image.size
    region = image.convert("L").crop(
        (int(box[0] * width), int(box[1] * height), int(box[2] * width), int(box[3] * height))
    )
    histogram = region.histogram()  # 256 counts of grey levels
    return sum(histogram[:128]) / max(1, sum(histogram))


def test_invoice_pdf_as_png_is_one_a4_page_with_content(app, world, session, tmp_path):
    seller = world.a.tenant.seller
    seller.iban, seller.bic = "DE89370400440532013000", "COBADEFFXXX"
    import datetime as dt

    from tests.factories.invoices import make_invoice

    invoice = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    session.commit()
    pdf = render_document(session, invoice, "pdf", "de").content
    path = _png(pdf, "invoice-de", tmp_path)
    image = Image.open(path)
    width, height = image.size
    assert abs(height / width - 297 / 210) < 0.01  # A4 portrait, one page (-singlefile)
    assert _ink(image, (0.05, 0.02, 0.95, 0.2)) > 0.01  # header: seller, title, number
    assert _ink(image, (0.05, 0.25, 0.95, 0.5)) > 0.01  # lines and totals
    assert _ink(image, (0.74, 0.55, 0.9, 0.7)) > 0.15  # the QR code's dense modules
