"""Template filters that format money, dates and labels for the viewer's locale."""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from babel import Locale
from babel.dates import get_date_format
from flask import Flask
from flask_babel import format_date, format_datetime, format_decimal
from flask_babel import lazy_gettext as _l

from portal.domain.money import Money
from portal.invoices.states import InvoiceStatus
from portal.tenancy.roles import Role
from portal.web.i18n import current_locale_name

STATUS_LABELS = {
    InvoiceStatus.DRAFT: _l("Draft"),
    InvoiceStatus.FINALIZED: _l("Open"),
    InvoiceStatus.SENT: _l("Sent"),
    InvoiceStatus.PAID: _l("Paid"),
    InvoiceStatus.UNCOLLECTIBLE: _l("Uncollectible"),
    InvoiceStatus.VOID: _l("Void"),
}

ROLE_LABELS = {
    Role.OWNER: _l("Owner"),
    Role.BILLING_ADMIN: _l("Billing admin"),
    Role.VIEWER: _l("Viewer"),
}


def money(value: Money | int, currency: str | None = None) -> str:
    """``{{ invoice.amount_due_minor|money(invoice.currency) }}`` or ``{{ m|money }}``."""
    if not isinstance(value, Money):
        if currency is None:
            raise ValueError("money filter needs a currency for a plain amount")
        value = Money(int(value), currency)
    return value.format(current_locale_name())


def number(value: Decimal | int, min_digits: int = 0, max_digits: int = 10) -> str:
    """A quantity or unit price for the locale, with ``min_digits``..``max_digits`` decimals."""
    pattern = "#,##0" + ("." + "0" * min_digits + "#" * (max_digits - min_digits))
    return format_decimal(Decimal(value), format=pattern)


@functools.lru_cache(maxsize=64)
def _medium_date(locale: str):
    parsed = Locale.parse(locale)
    return parsed, get_date_format("medium", locale=parsed)


def date_short(value: dt.date) -> str:
    """A calendar date in the locale's medium format ("Nov 21, 2026", "21.11.2026")."""
    if isinstance(value, dt.datetime):  # an instant: Flask-Babel converts it to the viewer's zone
        return format_date(value, "medium")
    # A date has no zone: Babel's pattern for the locale, parsed once per locale.
    locale, pattern = _medium_date(current_locale_name())
    return pattern.apply(value, locale)


def datetime_short(value: dt.datetime) -> str:
    return format_datetime(value, "short")


def register_filters(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_filter(number)
    app.add_template_filter(date_short)
    app.add_template_filter(datetime_short)
    app.add_template_global(lambda status: STATUS_LABELS[InvoiceStatus(status)], "status_label")
    app.add_template_global(lambda role: ROLE_LABELS[Role(role)], "role_label")
