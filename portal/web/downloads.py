"""Invoice documents as downloads, the same for the tenant pages and the signed links."""

from __future__ import annotations

import io

from flask import flash, redirect, send_file
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.documents.formats import DocumentNotAvailable, UnknownFormat, render_document
from portal.extensions import db
from portal.invoices.models import Invoice


def send_invoice_document(invoice: Invoice, fmt: str, *, back_to: str) -> Response:
    """``invoice`` in format ``fmt`` (a key of the format registry, any case) as an attachment.

    An issued invoice's document is stored on its first download and committed before the
    answer, so every later download (and the API, and the e-mail) gets the same bytes. An
    unknown format, or one the invoice cannot have (no e-invoice for a draft, XRechnung
    without a Leitweg-ID), flashes the reason and answers 303 to ``back_to``.
    The answer is never cached (``Cache-Control: private, no-store``).
    """
    try:
        document = render_document(db.session, invoice, fmt.lower(), invoice.language)
    except UnknownFormat as exc:
        flash(
            _("Unknown format. Available: %(formats)s.", formats=", ".join(exc.supported)), "error"
        )
        return redirect(back_to, code=303)
    except DocumentNotAvailable as exc:
        flash(_("This document is not available: %(reason)s", reason=exc.reason), "error")
        return redirect(back_to, code=303)
    # The stored rendering (render_document flushes it) commits with the request.
    response = send_file(
        io.BytesIO(document.content),
        mimetype=document.media_type,
        as_attachment=True,
        download_name=document.filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
