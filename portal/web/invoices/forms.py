"""Forms of the invoice pages."""

from __future__ import annotations

from flask_wtf import FlaskForm


class SendInvoiceForm(FlaskForm):
    """Only the CSRF token; the invoice to send is in the URL."""
