"""The EPC QR code ("GiroCode") of a SEPA credit transfer, printed on EUR invoices.

Payload per EPC069-12 version 002: banking apps read IBAN, name, amount and the reference
from it, so the buyer pays without typing. Only EUR amounts from 0.01 to 999,999,999.99
can be encoded; other invoices get no code.
"""

from __future__ import annotations

import functools
from decimal import Decimal

import segno

#: Largest amount the standard allows, in cents.
MAX_MINOR = 99_999_999_999


def epc_payload(
    *, name: str, iban: str, amount_minor: int, currency: str, reference: str, bic: str = ""
) -> str | None:
    """The EPC QR text, or None when the transfer cannot be encoded (not EUR, no amount)."""
    if currency != "EUR" or not iban or not name or not 0 < amount_minor <= MAX_MINOR:
        return None
    amount = Decimal(amount_minor) / 100
    lines = [
        "BCD",  # service tag
        "002",  # version (BIC optional inside the EEA)
        "1",  # UTF-8
        "SCT",  # SEPA credit transfer
        (bic or "").replace(" ", "")[:11],
        name.strip()[:70],
        iban.replace(" ", "").upper()[:34],
        f"EUR{amount:.2f}",
        "",  # purpose code
        "",  # structured creditor reference (we use the unstructured one)
        reference.strip()[:140],
    ]
    return "\n".join(lines)


def epc_qr_data_uri(payload: str) -> str:
    """An SVG data URI of the code: error correction M, as the standard asks."""
    return segno.make(payload, error="m", micro=False, encoding="utf-8").svg_data_uri(
        scale=4, border=2, dark="#000", nl=False
    )


@functools.lru_cache(maxsize=256)
def epc_qr_png_data_uri(payload: str) -> str:
    """The code as a PNG data URI (4 pixels per module), for the invoice PDF.

    WeasyPrint draws an image in half the time it takes to parse and draw the SVG path of
    every module; shown with ``image-rendering: pixelated`` (``/Interpolate false``) it stays
    sharp, and a viewer that smooths it anyway blurs a quarter of a module at most.
    Cached by payload: making the code (mask selection in pure Python) takes ~10 ms, and the
    same invoice is rendered again for the download, the e-mail and Factur-X.
    """
    return segno.make(payload, error="m", micro=False, encoding="utf-8").png_data_uri(
        scale=4, border=2, dark="#000"
    )
