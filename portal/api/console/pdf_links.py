"""Download links to an invoice's PDF that work for a few minutes without a token.

The link carries the invoice's public id signed with the app's secret and the time it was
made (itsdangerous), under a salt of its own, so no other signed value opens it.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.db import parse_public_id

#: How long a PDF download link works.
PDF_LINK_SECONDS = 600


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="console-invoice-pdf")


def pdf_link_token(invoice_public_id: Any) -> str:
    """The token of a download link to this invoice's PDF."""
    return _signer().dumps(str(invoice_public_id))


def pdf_link_opens(token: str | None, invoice_uid: str) -> bool:
    """Whether ``token`` was made for ``invoice_uid`` less than PDF_LINK_SECONDS ago."""
    try:
        signed = _signer().loads(token or "", max_age=PDF_LINK_SECONDS)
    except (BadSignature, SignatureExpired):
        return False
    return signed == str(parse_public_id(invoice_uid) or "")
