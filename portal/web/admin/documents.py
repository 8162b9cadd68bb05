"""Admin console: the companies list and the stored documents with their checks."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from portal.documents.formats import (
    FORMATS,
    DocumentNotAvailable,
    UnknownFormat,
    render_document,
    stored_validation,
)
from portal.documents.queries import latest_stored_documents
from portal.extensions import db
from portal.tenancy.models import Tenant
from portal.tenancy.queries import TenantSummary, tenant_summaries
from portal.web.admin.blueprint import bp
from portal.web.admin.common import load_invoice
from portal.web.admin.company_forms import STATUS_FILTERS, blank_values, form_context
from portal.web.guards import admin_view
from portal.web.htmx import render_page


@bp.get("/")
@admin_view
def index():
    """Companies with members and open amounts, a search box and an archived filter (htmx:
    the rows only), and the form of a new company."""
    return companies_page()


def companies_page(values: dict | None = None, errors: dict | None = None):
    """The companies list; with ``errors`` the new-company form is open and marked."""
    search = request.args.get("q", "")[:100]
    status = request.args.get("status", "current")
    if status not in STATUS_FILTERS:
        status = "current"
    return render_page(
        "admin/index.html",
        "admin/_companies.html",
        summaries=company_rows(search, STATUS_FILTERS[status]),
        search=search,
        status=status,
        form_open=bool(errors),
        action=url_for("admin.create_company_view"),
        **form_context(values or blank_values(), errors),
    )


def company_rows(search: str, archived: bool | None = False) -> list[TenantSummary]:
    """Companies whose name or handle contains ``search`` (case-insensitive); ``archived``
    True or False keeps only archived or current ones, None keeps all."""
    summaries = tenant_summaries(db.session)
    if archived is not None:
        summaries = [s for s in summaries if (s.tenant.archived_at is not None) == archived]
    needle = search.strip().casefold()
    if not needle:
        return summaries
    return [
        s
        for s in summaries
        if needle in s.tenant.name.casefold() or needle in s.tenant.slug.casefold()
    ]


@bp.get("/documents")
@admin_view
def documents():
    """The latest stored documents of every company, with their validation findings."""
    rows = latest_stored_documents(db.session, limit=100)
    return render_page("admin/documents.html", rows=rows, counts=_counts)


@bp.get("/invoices/<invoice_id>/documents")
@admin_view
def invoice_documents(invoice_id: str):
    """One invoice's stored documents: format, checksum and every validation finding."""
    invoice = load_invoice(invoice_id)
    return render_page(
        "admin/invoice_documents.html",
        invoice=invoice,
        tenant=db.session.get(Tenant, invoice.tenant_id),
        stored=stored_validation(db.session, invoice),
        formats=[f for f in FORMATS.values() if f.key != "zugferd"],
        counts=_counts,
    )


@bp.post("/invoices/<invoice_id>/documents")
@admin_view
def make_document(invoice_id: str):
    """Render and store one format now (and so validate it), e.g. before sending."""
    invoice = load_invoice(invoice_id)
    target = url_for("admin.invoice_documents", invoice_id=invoice.public_id)
    try:
        document = render_document(db.session, invoice, request.form.get("format", ""))
    except UnknownFormat as exc:
        flash(
            _("Unknown format. Available: %(formats)s.", formats=", ".join(exc.supported)), "error"
        )
        return redirect(target, code=303)
    except DocumentNotAvailable as exc:
        flash(_("This document is not available: %(reason)s", reason=exc.reason), "error")
        return redirect(target, code=303)
    flash(_("%(file)s is stored and checked.", file=document.filename), "success")
    return redirect(target, code=303)


def _counts(findings: list[dict] | None) -> dict[str, int]:
    """Findings by severity, e.g. {"fatal": 0, "warning": 1}."""
    counts = {"fatal": 0, "warning": 0}
    for finding in findings or []:
        severity = finding.get("severity", "fatal")
        counts[severity] = counts.get(severity, 0) + 1
    return counts
