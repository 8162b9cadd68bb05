"""Invoice PDFs: templates/documents/invoice.html rendered by WeasyPrint.

Amounts, numbers and dates are formatted with Babel for the document's locale, so the
PDF says what the page and the e-mail say. Only data: URLs are fetched while rendering
(an embedded logo): no network, no files, no web fonts.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy.orm import Session, object_session

from portal.documents.einvoice.model import credit_note_vat
from portal.documents.epc import epc_payload, epc_qr_png_data_uri
from portal.domain.money import Money
from portal.invoices.drafts import draft_totals
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.queries import invoice_parties
from portal.invoices.states import CreditNoteStatus, InvoiceStatus, VatCategory
from portal.tenancy.models import Seller

#: Words for the UNCL5305 VAT categories (BT-118), shown beside the code.
VAT_CATEGORY_LABELS = {
    VatCategory.STANDARD: _l("Standard rate"),
    VatCategory.ZERO: _l("Zero rated"),
    VatCategory.EXEMPT: _l("Exempt from VAT"),
    VatCategory.REVERSE_CHARGE: _l("Reverse charge"),
    VatCategory.INTRA_COMMUNITY: _l("Intra-community supply"),
    VatCategory.EXPORT: _l("Export outside the EU"),
    VatCategory.OUTSIDE_SCOPE: _l("Not subject to VAT"),
}


def document_locale(locale: str | None) -> str:
    """``locale`` if Babel knows it, else English."""
    try:
        return str(Locale.parse(locale or "en", sep="-" if "-" in (locale or "") else "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return "en"


def format_money(minor: int, currency: str, locale: str) -> str:
    """An amount in minor units, e.g. "€1,234.50" or "1.234,50 €"."""
    return Money(int(minor), currency).format(locale)


def format_quantity(value: Decimal, locale: str) -> str:
    """A quantity without trailing zeros: "3", "2.5", "0.000125"."""
    return format_decimal(Decimal(value), format="#,##0.######", locale=locale)


def format_unit_price(value: Decimal, currency: str, locale: str) -> str:
    """A unit price with the currency's decimals, or more when the price has them."""
    return format_currency(
        Decimal(value).normalize(), currency, locale=locale, decimal_quantization=False
    )


def format_rate(value: Decimal, locale: str) -> str:
    """A VAT rate in percent: "19%", "7,7 %"."""
    return format_percent(
        (Decimal(value) / 100).normalize(), locale=locale, decimal_quantization=False
    )


def format_day(value: dt.date | None, locale: str) -> str:
    """A date in the locale's medium format, or a dash."""
    return format_date(value, "medium", locale=locale) if value else "–"


def country_name(code: str | None, locale: str) -> str:
    """The country's name in ``locale`` ("DE" → "Germany"), or the code if unknown."""
    if not code:
        return ""
    return Locale.parse(locale).territories.get(code.upper(), code)


def invoice_filename(invoice: Invoice) -> str:
    """The PDF's file name: the invoice number, or "draft-<public id>" for a draft."""
    stem = invoice.number if invoice.number else f"draft-{invoice.public_id}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-") + ".pdf"


def css_string(text: str) -> Markup:
    """``text`` as a quoted CSS string, safe inside a <style> element."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    escaped = escaped.replace("<", "\\3C ").replace(">", "\\3E ")
    return Markup(f'"{escaped}"')  # noqa: S704 (quotes and angle brackets escaped for CSS)


def page_counter_content() -> Markup:
    """CSS ``content`` for "Page 1 of 2" in the current language, with page counters."""
    page_marker, pages_marker = "\x00PAGE\x00", "\x00PAGES\x00"
    text = str(css_string(_("Page %(page)s of %(pages)s", page=page_marker, pages=pages_marker)))
    text = text.replace(page_marker, '" counter(page) "')
    return Markup(text.replace(pages_marker, '" counter(pages) "'))  # noqa: S704 (escaped above)


def _logo_data_uri(session: Session | None, invoice: Invoice | CreditNote) -> str | None:
    if session is None:
        return None
    seller = session.get(Seller, invoice.seller_id)
    if seller is None or not seller.logo or seller.logo_mime not in {"image/png", "image/svg+xml"}:
        return None
    snapshot = invoice.seller_snapshot or {}
    if "logo_sha256" in snapshot and snapshot["logo_sha256"] != seller.logo_sha256:
        # Issued with another logo (or none): the seller's new logo is not the one the
        # document was issued with, and an issued document does not change.
        return None
    return f"data:{seller.logo_mime};base64,{base64.b64encode(seller.logo).decode('ascii')}"


@dataclass(frozen=True)
class VatRowView:
    """A VAT breakdown row as the template prints it (credit notes store none)."""

    category: VatCategory
    rate: Decimal
    taxable_minor: int
    tax_minor: int
    exemption_reason: str | None
    exemption_code: str | None


def vat_rows(document: Invoice | CreditNote) -> list:
    """The VAT breakdown to print: the stored one, or a credit note's recomputed one."""
    if isinstance(document, Invoice):
        return list(document.vat_breakdown)

    return [
        VatRowView(
            VatCategory(row.category),
            row.rate,
            row.taxable_minor,
            row.tax_minor,
            row.exemption_reason,
            row.exemption_code,
        )
        for row in credit_note_vat(document)
    ]


@dataclass(frozen=True)
class LineRowView:
    """A document line as the pages, the estimate and the PDF print it."""

    position: int
    description: str
    quantity: Decimal
    unit_price: Decimal  # major units (BT-146)
    vat_category: VatCategory
    vat_rate: Decimal
    net_minor: int  # BT-131
    period_start: dt.date | None
    period_end: dt.date | None
    #: The line has a service period of its own to print under the description: always
    #: on a credit note, on an invoice when it differs from the invoice's period.
    own_period: bool


@dataclass(frozen=True)
class AllowanceChargeView:
    """A document-level allowance or charge as printed (BG-20 / BG-21)."""

    is_charge: bool
    reason: str
    percent: Decimal | None
    base_minor: int | None
    amount_minor: int
    vat_category: VatCategory
    vat_rate: Decimal


@dataclass(frozen=True)
class TotalsView:
    """Document totals (BG-22), and for an invoice what has been paid and credited."""

    lines_total_minor: int
    allowance_total_minor: int
    charge_total_minor: int
    tax_exclusive_minor: int
    tax_minor: int
    tax_inclusive_minor: int
    prepaid_minor: int
    rounding_minor: int
    amount_due_minor: int
    #: Only invoices are paid and credited; None on credit notes and estimates.
    paid_minor: int | None = None
    credited_minor: int | None = None
    open_minor: int | None = None


@dataclass(frozen=True)
class DocumentRows:
    """What the invoice layout prints: lines, VAT breakdown, allowances, totals."""

    currency: str
    lines: list[LineRowView]
    vat: list  # InvoiceVatBreakdown rows, or VatRowView where none are stored
    allowance_charges: list[AllowanceChargeView]
    totals: TotalsView


def _line_row(
    line, period: tuple, *, always_own_period: bool = False, position=None, net_minor=None
) -> LineRowView:
    """A stored line (``position`` and net from the row) or a planned one (given)."""
    has_period = bool(line.period_start and line.period_end)
    return LineRowView(
        position=line.position if position is None else position,
        description=line.description,
        quantity=line.quantity,
        unit_price=line.unit_price,
        vat_category=line.vat_category,
        vat_rate=line.vat_rate,
        net_minor=line.net_amount_minor if net_minor is None else net_minor,
        period_start=line.period_start,
        period_end=line.period_end,
        own_period=has_period
        and (always_own_period or (line.period_start, line.period_end) != period),
    )


def _allowance_view(ac: Any) -> AllowanceChargeView:
    """An allowance or charge row (a stored one, or a dict of a draft's) as printed."""
    get: Callable[[str], Any] = ac.get if isinstance(ac, dict) else functools.partial(getattr, ac)
    return AllowanceChargeView(
        is_charge=get("is_charge"),
        reason=get("reason"),
        percent=get("percent"),
        base_minor=get("base_minor"),
        amount_minor=get("amount_minor"),
        vat_category=VatCategory(get("vat_category")),
        vat_rate=get("vat_rate"),
    )


def _stored_totals(document: Invoice | CreditNote) -> TotalsView:
    invoice = document if isinstance(document, Invoice) else None
    return TotalsView(
        lines_total_minor=document.lines_total_minor,
        allowance_total_minor=document.allowance_total_minor,
        charge_total_minor=document.charge_total_minor,
        tax_exclusive_minor=document.tax_exclusive_minor,
        tax_minor=document.tax_minor,
        tax_inclusive_minor=document.tax_inclusive_minor,
        prepaid_minor=document.prepaid_minor,
        rounding_minor=document.rounding_minor,
        amount_due_minor=document.amount_due_minor,
        paid_minor=invoice.amount_paid_minor if invoice else None,
        credited_minor=invoice.amount_credited_minor if invoice else None,
        open_minor=invoice.amount_open_minor if invoice else None,
    )


def _estimate_rows(estimate) -> DocumentRows:
    """The projected invoice of an estimate: the rows the invoice will store and print
    (:func:`~portal.invoices.drafts.draft_totals` is what drafts are computed with)."""
    plan = estimate.projected
    currency = estimate.projected_totals.amount_due.currency
    allowances = plan.allowance_rows()
    computed = draft_totals(plan.lines, allowances, currency)
    period = (plan.period_start, plan.period_last_day)
    # Planned lines have no position yet: the invoice numbers them in this order.
    lines = [
        _line_row(line, period, position=position, net_minor=net)
        for position, (line, net) in enumerate(
            zip(plan.lines, computed.line_nets, strict=True), start=1
        )
    ]
    return DocumentRows(
        currency=currency,
        lines=lines,
        vat=[VatRowView(**row) for row in computed.vat_rows],
        allowance_charges=[_allowance_view(ac) for ac in allowances],
        totals=TotalsView(**computed.columns),
    )


def document_rows(document) -> DocumentRows:
    """The rows every invoice layout prints, built once for the page, the link and the PDF.

    ``document`` is an invoice, a credit note, or an upcoming-invoice estimate
    (:class:`portal.invoices.estimates.Estimate`, shown as its projection).
    """
    if isinstance(document, Invoice):
        period = (document.period_start, document.period_end)
        return DocumentRows(
            currency=document.currency,
            lines=[_line_row(line, period) for line in document.lines],
            vat=vat_rows(document),
            allowance_charges=[_allowance_view(ac) for ac in document.allowance_charges],
            totals=_stored_totals(document),
        )
    if isinstance(document, CreditNote):
        return DocumentRows(
            currency=document.currency,
            lines=[
                _line_row(line, (None, None), always_own_period=True) for line in document.lines
            ],
            vat=vat_rows(document),
            allowance_charges=[],  # credit notes carry no document-level allowances
            totals=_stored_totals(document),
        )
    return _estimate_rows(document)


def is_draft_document(document: Invoice | CreditNote) -> bool:
    """Whether the invoice or credit note has not been issued yet."""
    if isinstance(document, CreditNote):
        return document.status == CreditNoteStatus.DRAFT
    return document.status == InvoiceStatus.DRAFT


def render_invoice_html(
    invoice: Invoice | CreditNote, *, locale: str, inline_css: bool = True
) -> str:
    """The HTML the PDF is made from (useful to test the content without a PDF reader).

    ``invoice`` may be a credit note: the same layout, titled and worded as one. With
    ``inline_css=False`` the document's stylesheet is left out (the PDF renderer passes
    its parsed copy, :func:`invoice_stylesheet`); only the per-document page rules stay.
    """
    # Imported here: queries imports services lazily, and pages import this module.

    locale = document_locale(locale)
    session = object_session(invoice)
    if session is not None:
        seller, buyer = invoice_parties(session, invoice)
    else:
        seller, buyer = dict(invoice.seller_snapshot or {}), dict(invoice.buyer_snapshot or {})
    currency = invoice.currency
    with force_locale(locale):
        return render_template(
            "documents/invoice.html",
            invoice=invoice,
            seller=seller,
            buyer=buyer,
            locale=locale,
            is_draft=is_draft_document(invoice),
            inline_css=inline_css,
            is_credit_note=isinstance(invoice, CreditNote),
            rows=document_rows(invoice),
            logo=_logo_data_uri(session, invoice),
            page_counter=page_counter_content(),
            epc_qr=_epc_qr(invoice, seller),
            css_string=css_string,
            vat_labels=VAT_CATEGORY_LABELS,
            money=lambda minor: format_money(minor, currency, locale),
            quantity=lambda value: format_quantity(value, locale),
            unit_price=lambda value: format_unit_price(value, currency, locale),
            rate=lambda value: format_rate(value, locale),
            day=lambda value: format_day(value, locale),
            country=lambda code: country_name(code, locale),
        )


def _epc_qr(invoice: Invoice | CreditNote, seller: dict) -> str | None:
    """The EPC QR code of the transfer the invoice asks for, when it asks for one."""
    if isinstance(invoice, CreditNote) or is_draft_document(invoice) or invoice.auto_collect:
        return None
    payload = epc_payload(
        name=seller.get("legal_name") or seller.get("name") or "",
        iban=seller.get("iban") or "",
        bic=seller.get("bic") or "",
        amount_minor=invoice.amount_due_minor,
        currency=invoice.currency,
        reference=invoice.number or "",
    )
    return epc_qr_png_data_uri(payload) if payload else None


def render_invoice_pdf(
    invoice: Invoice | CreditNote,
    *,
    locale: str,
    pdf_variant: str | None = None,
    attachments: Sequence = (),
    xmp_metadata: Sequence[str] = (),
) -> bytes:
    """The invoice (or credit note) as a PDF in ``locale`` (amounts and dates through Babel).

    Needs an app context (templates, translations). Drafts carry a visible "DRAFT" mark.
    ``pdf_variant``, ``attachments`` (WeasyPrint ``Attachment``) and ``xmp_metadata``
    (data: URLs of XMP ``rdf:RDF`` blocks) make the Factur-X PDF/A-3.
    """
    from weasyprint import HTML

    html = render_invoice_html(invoice, locale=locale, inline_css=False)
    document = HTML(string=html, base_url=None, url_fetcher=data_only_fetcher())
    options: dict = {}
    if pdf_variant:
        options["pdf_variant"] = pdf_variant
    if xmp_metadata:
        options["xmp_metadata"] = list(xmp_metadata)
    with warnings.catch_warnings():
        # WeasyPrint 70 opens its sRGB profile for PDF/A output intents and never closes it;
        # the ResourceWarning is about its file handle, not about the document.
        warnings.simplefilter("ignore", ResourceWarning)
        return document.write_pdf(
            pdf_identifier=str(invoice.public_id).encode("ascii"),
            custom_metadata=False,
            pdf_tags=True,  # tagged PDF: headings, tables and reading order for screen readers
            attachments=list(attachments) or None,
            stylesheets=[invoice_stylesheet()],
            font_config=_font_config(),
            **options,
        )


@functools.cache
def _parsed_stylesheet(source: str):
    from weasyprint import CSS

    return CSS(string=source, url_fetcher=data_only_fetcher())


def invoice_stylesheet():
    """templates/documents/invoice.css parsed once per process (and again if it changes):
    parsing it took about a tenth of every render. WeasyPrint only reads a parsed sheet."""
    env = current_app.jinja_env
    # Flask's environment always has its loader (templates/ and the blueprints' folders).
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, "documents/invoice.css")
    return _parsed_stylesheet(source)


_THREAD = threading.local()


def _font_config():
    """A WeasyPrint ``FontConfiguration`` per thread, reused by the thread's renders.

    A new one loads Fontconfig's configuration and a new Pango font map that loads the
    fonts again for every text style: 15-25 % of an invoice render, measured. A kept one
    has them. Pango font maps are not to be shared between threads, hence one per thread.
    The invoice has no ``@font-face`` rules, so nothing is added to it while rendering.
    """
    font_config = getattr(_THREAD, "font_config", None)
    if font_config is None:
        from weasyprint.text.fonts import FontConfiguration

        font_config = _THREAD.font_config = FontConfiguration()
    return font_config


def data_only_fetcher():
    """A WeasyPrint URL fetcher that fetches data: URLs only (no network, no files)."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"})
