"""Shared pieces of the admin pages: the acting admin, loaders that 404, refusals."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from babel.numbers import NumberFormatError, parse_decimal
from flask import abort, flash, redirect, request
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.queries import find_invoice
from portal.ops.audit import Actor, AdminActionRefused
from portal.ops.models import Job
from portal.ops.queries import job_by_public_id
from portal.tenancy.models import Tenant
from portal.tenancy.queries import tenant_by_public_id
from portal.web.i18n import current_locale_name

#: What a number may be written with: digits, the locale's separators and a sign (no
#: exponents or NaN, which Decimal would read).
NUMBER = re.compile(r"-?[0-9][0-9.,]*")


def current_actor() -> Actor:
    """The logged-in admin as the actor of an audited write."""
    return Actor(
        label=current_user.email,
        user_id=current_user.id,
        ip_address=request.remote_addr,
        request_id=request.headers.get("X-Request-Id"),
    )


def load_company(company_id: str) -> Tenant:
    """A company by its public id; unknown or malformed ids answer 404."""
    tenant = tenant_by_public_id(db.session, company_id)
    if tenant is None:
        abort(404)
    return tenant


def load_job(job_id: str) -> Job:
    """A job by its public id, or 404."""
    job = job_by_public_id(db.session, job_id)
    if job is None:
        abort(404)
    return job


def load_invoice(invoice_id: str) -> Invoice:
    """Any company's invoice by its public id, or 404."""
    invoice = find_invoice(db.session, invoice_id)
    if invoice is None:
        abort(404)
    return invoice


def refused(exc: AdminActionRefused, target: str):
    """Answer a refused action: nothing it wrote is kept, its reason is shown on ``target``.

    The answer is a redirect (303), which the request's unit of work would commit; the
    refused action's writes are discarded here first.
    """
    db.session.rollback()
    flash(translated(exc.message), "error")
    return redirect(target, code=303)


def translated(message: str) -> str:
    """A service's English message in the viewer's language (the catalog holds them)."""
    return _(message)


def parse_date(value: str | None) -> tuple[dt.date | None, bool]:
    """A date from ``YYYY-MM-DD``; returns (date or None, whether the text was valid)."""
    if not value:
        return None, True
    try:
        return dt.date.fromisoformat(value.strip()), True
    except ValueError:
        return None, False


def positive_int(value: str | None, default: int) -> int | None:
    """A page number or size from the query string; None when it is not a positive int."""
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 1 else None


def locale_decimal(text: str) -> Decimal | None:
    """A number as the viewer writes it ("1,500.5" in English, "1.500,5" in German); None
    when it is not one.

    Strict parsing refuses misplaced group separators, so "1.500" typed on a German page is
    1500, never 1.5, and "1,5" on an English page is an error rather than fifteen.
    """
    try:
        if not NUMBER.fullmatch(text):
            raise NumberFormatError(text)
        return parse_decimal(text, locale=current_locale_name(), strict=True)
    except NumberFormatError:
        return None


def number_example() -> str:
    """1500.5 as the viewer writes numbers, for "enter a number such as …" messages."""
    return format_decimal(Decimal("1500.5"), format="#,##0.0")
