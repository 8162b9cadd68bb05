"""Tenant invoice pages: the filtered list, one invoice, its PDF, and sending it by e-mail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, g, redirect, request, url_for
from flask_babel import get_locale, gettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.documents.formats import FORMATS
from portal.documents.pdf import (
    VAT_CATEGORY_LABELS,
    country_name,
    document_rows,
    format_quantity,
    format_rate,
    format_unit_price,
)
from portal.extensions import db
from portal.invoices.queries import (
    DEFAULT_PAGE_SIZE,
    FilterError,
    InvoiceFilter,
    count_by_tab,
    drafts_visible,
    invoice_detail,
    list_invoices,
    load_invoice,
    parse_paging,
)
from portal.invoices.states import CreditNoteStatus, InvoiceStatus
from portal.notifications.delivery import SENDABLE, InvoiceNotSendable, send_invoice
from portal.payments.models import PaymentStatus
from portal.tenancy.models import BillingProfile
from portal.urls import url_builder
from portal.web.downloads import send_invoice_document
from portal.web.formatting import STATUS_LABELS, date_short, money
from portal.web.guards import can, tenant_view
from portal.web.htmx import render_page, wants_fragment
from portal.web.invoices.forms import SendInvoiceForm

bp = Blueprint("invoices", __name__)

#: Statuses an invoice can be e-mailed in.
NOT_SENDABLE_MESSAGES = {
    "draft": _l("A draft cannot be sent: it is e-mailed once it has been issued."),
    "closed": _l("Only issued invoices that are not yet paid can be sent by e-mail."),
    "no_recipient": _l("There is no billing e-mail address in your billing profile to send it to."),
    "einvoice_unavailable": _l(
        "The e-invoice your billing profile asks for cannot be made for this invoice."
    ),
}

TAB_LABELS = {
    "all": _l("All"),
    "open": _l("Open"),
    "overdue": _l("Overdue"),
    "paid": _l("Paid"),
    "draft": _l("Drafts"),
}

HEADINGS = {
    "all": _l("All invoices"),
    "open": _l("Open invoices"),
    "overdue": _l("Overdue invoices"),
    "paid": _l("Paid invoices"),
    "draft": _l("Draft invoices"),
}

SORT_LABELS = {
    "issue_date": _l("Issue date"),
    "due_date": _l("Due date"),
    "number": _l("Number"),
    "total": _l("Total"),
}

DIRECTION_LABELS = {"desc": _l("Descending"), "asc": _l("Ascending")}

#: What to say about each unusable list parameter (queries report codes, not words).
FILTER_MESSAGES = {
    ("status", "invalid_choice"): _l("There is no “%(value)s” tab: showing all invoices."),
    ("issued_from", "invalid_date"): _l(
        "“%(value)s” is not a date (use YYYY-MM-DD): the start date is ignored."
    ),
    ("issued_to", "invalid_date"): _l(
        "“%(value)s” is not a date (use YYYY-MM-DD): the end date is ignored."
    ),
    ("issued_to", "date_range_reversed"): _l(
        "The start date was after the end date: the two dates were swapped."
    ),
    ("sort", "invalid_choice"): _l("Invoices cannot be sorted by “%(value)s”: sorted by date."),
    ("direction", "invalid_choice"): _l("“%(value)s” is not an order: newest first."),
    ("page", "not_an_integer"): _l("“%(value)s” is not a page number: showing the first page."),
    ("page", "out_of_range"): _l("There is no page “%(value)s”: showing the first page."),
    ("page_size", "not_an_integer"): _l(
        "“%(value)s” is not a number of invoices per page: showing %(default)d."
    ),
    ("page_size", "out_of_range"): _l(
        "Between 1 and %(max)d invoices fit on a page: “%(value)s” was adjusted."
    ),
}

PAYMENT_STATUS_LABELS = {
    PaymentStatus.PENDING: _l("Pending"),
    PaymentStatus.REQUIRES_ACTION: _l("Action required"),
    PaymentStatus.SUCCEEDED: _l("Succeeded"),
    PaymentStatus.FAILED: _l("Failed"),
    PaymentStatus.CANCELED: _l("Canceled"),
}

CREDIT_NOTE_STATUS_LABELS = {
    CreditNoteStatus.DRAFT: _l("Draft"),
    CreditNoteStatus.ISSUED: _l("Issued"),
    CreditNoteStatus.VOID: _l("Void"),
}


def filter_message(error: FilterError) -> str:
    """The sentence shown for an unusable list parameter."""
    template = FILTER_MESSAGES.get((error.field, error.code))
    if template is None:
        return _("“%(value)s” was ignored.", value=error.value)
    return str(template) % {
        "value": error.value[:60],
        "default": DEFAULT_PAGE_SIZE,
        "max": 100,
    }


def _page_window(page: int, pages: int, radius: int = 1) -> list[int | None]:
    """Page numbers to link, with None for a gap: 1 … 4 5 6 … 12."""
    shown = {1, pages, *range(max(1, page - radius), min(pages, page + radius) + 1)}
    window: list[int | None] = []
    for number in sorted(shown):
        if window and number - (window[-1] or 0) > 1:
            window.append(None)
        window.append(number)
    return window


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    """One row of the invoice list, formatted for the viewer (the template only prints)."""

    label: str
    show_url: str
    pdf_url: str
    pdf_hint: str
    period: str | None
    issued: str
    due: str
    status: str
    status_label: str
    overdue: bool
    total: str
    open: str


def invoice_rows(invoices, today: dt.date) -> list[InvoiceRow]:
    """The list's rows: labels translated once per page, not once per row."""
    show_url = url_builder("invoices.show", "invoice_id")
    pdf_url = url_builder("invoices.pdf", "invoice_id")
    draft = _("Draft")
    pdf_hint = gettext("of %(invoice)s")  # formatted per row below
    statuses = {status: str(label) for status, label in STATUS_LABELS.items()}
    rows = []
    for invoice in invoices:
        label = invoice.number or draft
        period = None
        if not invoice.number and invoice.period_start:
            period = f"{date_short(invoice.period_start)} – {date_short(invoice.period_end)}"
        rows.append(
            InvoiceRow(
                label=label,
                show_url=show_url(invoice.public_id),
                pdf_url=pdf_url(invoice.public_id),
                pdf_hint=pdf_hint % {"invoice": label},
                period=period,
                issued=date_short(invoice.issue_date) if invoice.issue_date else "–",
                due=date_short(invoice.due_date) if invoice.due_date else "–",
                status=invoice.status.value,
                status_label=statuses[invoice.status],
                overdue=invoice.is_overdue(today),
                total=money(invoice.tax_inclusive_minor, invoice.currency),
                open=money(invoice.amount_open_minor, invoice.currency),
            )
        )
    return rows


def _locale() -> str:
    return str(get_locale() or "en")


@bp.context_processor
def _invoice_formatting() -> dict:
    """Number formats of the invoice pages, in the viewer's locale."""
    return {
        "fmt_quantity": lambda value: format_quantity(value, _locale()),
        "fmt_unit_price": lambda value, currency: format_unit_price(value, currency, _locale()),
        "fmt_rate": lambda value: format_rate(value, _locale()),
        "country_name": lambda code: country_name(code, _locale()),
        "vat_labels": VAT_CATEGORY_LABELS,
    }


@bp.get("/invoices")
@tenant_view()
def index():
    """The tenant's invoices: status tabs with counts, date range, number search, sorting.

    Works as a plain GET form; htmx swaps only the results and pushes the canonical URL,
    so back, forward and reload show the same state.
    """
    today = dt.date.today()
    show_drafts = drafts_visible(db.session, g.tenant)
    flt, errors = InvoiceFilter.from_args(request.args, allow_drafts=show_drafts)
    page, page_size, paging_errors = parse_paging(request.args)
    counts = count_by_tab(db.session, g.tenant, flt, today=today)
    # The selected tab's count is the list's total: no second count.
    result = list_invoices(
        db.session, g.tenant, flt, page, page_size, today=today, total=counts[flt.status]
    )

    def link(page: int = 1, **changes: Any) -> str:
        args: dict[str, Any] = flt.with_changes(**changes).to_args()
        if page_size != DEFAULT_PAGE_SIZE:
            args["page_size"] = str(page_size)
        if page > 1:
            args["page"] = str(page)
        return url_for("invoices.index", **args)

    all_errors = [*errors, *paging_errors]
    response = render_page(
        "invoices/index.html",
        "invoices/_list.html",
        flt=flt,
        result=result,
        tabs=[(tab, TAB_LABELS[tab], counts[tab]) for tab in TAB_LABELS if tab in counts],
        heading=HEADINGS[flt.status],
        messages=[filter_message(error) for error in all_errors],
        invalid_fields={error.field for error in all_errors},
        sort_labels=SORT_LABELS,
        direction_labels=DIRECTION_LABELS,
        page_size=page_size,
        default_page_size=DEFAULT_PAGE_SIZE,
        window=_page_window(result.page, result.pages),
        link=link,
        today=today,
        rows=invoice_rows(result.items, today),
    )
    if wants_fragment():
        response.headers["HX-Push-Url"] = link(result.page)
    return response


def _billing_profile() -> BillingProfile | None:
    return db.session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == g.tenant.id)
    ).first()


@bp.get("/invoices/<invoice_id>")
@tenant_view()
def show(invoice_id: str):
    """One invoice: parties, dates, lines, VAT breakdown, totals, payments, credit notes."""
    detail = invoice_detail(db.session, g.tenant, invoice_id)
    invoice = detail.invoice
    sendable = invoice.status in SENDABLE and can("manage_billing")
    return render_page(
        "invoices/show.html",
        detail=detail,
        invoice=invoice,
        rows=document_rows(invoice),
        today=dt.date.today(),
        sendable=sendable,
        profile=_billing_profile() if sendable else None,
        einvoice_formats=[f for f in FORMATS.values() if f.is_einvoice]
        if invoice.status != InvoiceStatus.DRAFT
        else [],
        send_form=SendInvoiceForm(),
        payment_labels=PAYMENT_STATUS_LABELS,
        credit_note_labels=CREDIT_NOTE_STATUS_LABELS,
    )


@bp.get("/invoices/<invoice_id>/pdf")
@tenant_view()
def pdf(invoice_id: str):
    """The invoice as a PDF download, in the invoice's language."""
    invoice = load_invoice(db.session, g.tenant, invoice_id)
    if invoice.pdf_url and invoice.status != InvoiceStatus.DRAFT:
        return redirect(invoice.pdf_url)  # a pre-generated document (see Invoice.pdf_url)
    return _download(invoice, "pdf")


@bp.get("/invoices/<invoice_id>/download")
@tenant_view()
def download(invoice_id: str):
    """The invoice in one format of the registry (PDF, UBL, XRechnung, CII, Factur-X…).

    An issued invoice's documents are stored on first download: the same bytes every time,
    the same as the API and the e-mail give. A format the invoice cannot have (no e-invoice
    for drafts, XRechnung without a Leitweg-ID) goes back to the invoice with the reason.
    """
    invoice = load_invoice(db.session, g.tenant, invoice_id)
    return _download(invoice, request.args.get("format", "pdf"))


def _download(invoice, fmt: str):
    return send_invoice_document(
        invoice, fmt, back_to=url_for("invoices.show", invoice_id=invoice.public_id)
    )


@bp.post("/invoices/<invoice_id>/send")
@tenant_view("manage_billing")
def send(invoice_id: str):
    """E-mail the invoice with its PDF to the billing contact; a finalized one becomes sent."""
    invoice = load_invoice(db.session, g.tenant, invoice_id)
    target = url_for("invoices.show", invoice_id=invoice.public_id)
    if not SendInvoiceForm().validate_on_submit():
        flash(_("The form expired. Reload the page and try again."), "error")
        return redirect(target, code=303)
    try:
        email = send_invoice(db.session, invoice)
    except InvoiceNotSendable as exc:
        message = str(NOT_SENDABLE_MESSAGES[exc.reason])
        flash(f"{message} {exc.detail}" if exc.detail else message, "error")
        return redirect(target, code=303)
    flash(
        _(
            "Invoice %(number)s is on its way to %(recipients)s.",
            number=invoice.number,
            recipients=", ".join([*email.to_addrs, *email.cc_addrs]),
        ),
        "success",
    )
    return redirect(target, code=303)
