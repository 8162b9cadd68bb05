"""Admin invoice pages: the cross-company list, one invoice, and its confirmed actions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.db import utcnow
from portal.extensions import db
from portal.invoices.actions import change_paid_state, credit, delete_draft_invoice, send, void
from portal.invoices.models import Invoice
from portal.invoices.queries import admin_invoice_list
from portal.invoices.states import InvoiceStatus
from portal.ops.audit import N_, AdminActionRefused
from portal.tenancy.models import Tenant
from portal.web.admin.blueprint import bp
from portal.web.admin.common import (
    current_actor,
    load_invoice,
    parse_date,
    positive_int,
    refused,
)
from portal.web.guards import admin_view
from portal.web.htmx import render_page

PAGE_SIZE = 25
#: Sortable columns of the cross-company list.
SORTS = {
    "issue_date": Invoice.issue_date,
    "number": Invoice.number,
    "total": Invoice.tax_inclusive_minor,
    "company": Tenant.name,
    "created": Invoice.created_at,
}
SORT_LABELS = {
    "issue_date": _l("Issue date"),
    "number": _l("Number"),
    "total": _l("Total"),
    "company": _l("Company"),
    "created": _l("Created"),
}


@dataclass
class AdminInvoiceFilter:
    """The list's query string, parsed; ``messages`` says what could not be used."""

    issued_from: dt.date | None = None
    issued_to: dt.date | None = None
    status: str = ""
    company: str = ""
    sort: str = "created"
    direction: str = "desc"
    page: int = 1
    messages: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, args: Any) -> AdminInvoiceFilter:
        flt = cls(company=args.get("company", "").strip()[:100])
        flt.issued_from, ok_from = parse_date(args.get("issued_from"))
        flt.issued_to, ok_to = parse_date(args.get("issued_to"))
        if not (ok_from and ok_to):
            flt.messages.append(_("Dates must look like 2026-10-31."))
        if flt.issued_from and flt.issued_to and flt.issued_from > flt.issued_to:
            flt.messages.append(_("The start date is after the end date; both were ignored."))
            flt.issued_from = flt.issued_to = None
        status = args.get("status", "")
        if status and status not in {s.value for s in InvoiceStatus}:
            flt.messages.append(_("Unknown status; showing every status."))
        else:
            flt.status = status
        sort = args.get("sort", "created")
        if sort in SORTS:
            flt.sort = sort
        else:
            flt.messages.append(_("Unknown sort order; sorted by creation."))
        direction = args.get("direction", "desc")
        flt.direction = direction if direction in ("asc", "desc") else "desc"
        page = positive_int(args.get("page"), 1)
        if page is None:
            flt.messages.append(_("Pages are numbered from 1."))
        flt.page = page or 1
        return flt

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments of this filter with ``changes``, without defaults."""
        values = {
            "issued_from": self.issued_from.isoformat() if self.issued_from else None,
            "issued_to": self.issued_to.isoformat() if self.issued_to else None,
            "status": self.status or None,
            "company": self.company or None,
            "sort": None if self.sort == "created" else self.sort,
            "direction": None if self.direction == "desc" else self.direction,
            "page": None if self.page == 1 else self.page,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v is not None}


def list_page(flt: AdminInvoiceFilter) -> tuple[list, int]:
    """One page of matching invoices with their companies, and the total count (in SQL)."""
    column = SORTS[flt.sort]
    order = column.asc() if flt.direction == "asc" else column.desc()
    return admin_invoice_list(
        db.session,
        day_from=flt.issued_from,
        day_to=flt.issued_to,
        drafts_by_period_start=False,
        status=InvoiceStatus(flt.status) if flt.status else None,
        company=flt.company,
        order_by=[order.nulls_last()],
        limit=PAGE_SIZE,
        offset=(flt.page - 1) * PAGE_SIZE,
    )


@bp.get("/invoices")
@admin_view
def invoices():
    """Invoices of every company: date range, status and company filters, sort, pages."""
    flt = AdminInvoiceFilter.parse(request.args)
    rows, total = list_page(flt)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_page(
        "admin/invoices.html",
        "admin/_invoice_list.html",
        flt=flt,
        rows=rows,
        total=total,
        pages=pages,
        page_size=PAGE_SIZE,
        statuses=list(InvoiceStatus),
        sort_labels=SORT_LABELS,
    )


#: Confirmable actions: URL name → (title, button label, button style).
ACTIONS = {
    "mark-paid": (_l("Mark as paid"), _l("Yes, mark as paid"), "btn--primary"),
    "mark-unpaid": (_l("Mark as unpaid"), _l("Yes, mark as unpaid"), "btn--danger"),
    "send": (_l("Send by e-mail"), _l("Yes, send it"), "btn--primary"),
    "delete": (_l("Delete draft"), _l("Yes, delete the draft"), "btn--danger"),
    "void": (_l("Void invoice"), _l("Yes, void it"), "btn--danger"),
    "credit": (_l("Issue a credit note"), _l("Yes, issue the credit note"), "btn--danger"),
}


def available_actions(invoice: Invoice) -> list[str]:
    """Actions that make sense in the invoice's state (the services still check)."""
    status = invoice.status
    actions = []
    if status in (InvoiceStatus.FINALIZED, InvoiceStatus.SENT, InvoiceStatus.UNCOLLECTIBLE):
        actions.append("mark-paid")
    if status == InvoiceStatus.PAID:
        actions.append("mark-unpaid")
    if status in (InvoiceStatus.FINALIZED, InvoiceStatus.SENT):
        actions += ["send", "void"]
    if status == InvoiceStatus.DRAFT:
        actions.append("delete")
    if status not in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
        actions.append("credit")
    return actions


@bp.get("/invoices/<invoice_id>")
@admin_view
def invoice(invoice_id: str):
    """One invoice with its company, lines and the actions its state allows."""
    inv = load_invoice(invoice_id)
    return render_page(
        "admin/invoice.html",
        invoice=inv,
        tenant=db.session.get(Tenant, inv.tenant_id),
        actions=[(key, ACTIONS[key]) for key in available_actions(inv)],
        today=utcnow().date(),
    )


@bp.get("/invoices/<invoice_id>/confirm/<action>")
@admin_view
def confirm(invoice_id: str, action: str):
    """The confirmation step of an invoice action (a page of its own: works without JS)."""
    if action not in ACTIONS:
        abort(404)
    inv = load_invoice(invoice_id)
    title, button, style = ACTIONS[action]
    return render_template(
        "admin/confirm.html",
        invoice=inv,
        tenant=db.session.get(Tenant, inv.tenant_id),
        action=action,
        title=title,
        button=button,
        style=style,
    )


def _credit_lines(form: Any, inv: Invoice) -> dict[int, Decimal] | None:
    """Quantities per line position from the credit form; None credits the whole invoice."""
    if form.get("scope", "all") == "all":
        return None
    lines: dict[int, Decimal] = {}
    for line in inv.lines:
        text = form.get(f"line-{line.position}", "").strip().replace(",", ".")
        if not text:
            continue
        try:
            lines[line.position] = Decimal(text)
        except InvalidOperation:
            raise AdminActionRefused(
                "invalid_quantity", N_("Quantities must be numbers.")
            ) from None
    if not lines:
        raise AdminActionRefused("nothing_to_credit", N_("Enter a quantity for at least one line."))
    return lines


def _perform(action: str, inv: Invoice) -> str:
    """Run one action through the services; returns the success message."""
    actor = current_actor()
    if action == "mark-paid":
        change_paid_state(db.session, inv, True, actor)
        return _("Invoice %(number)s is marked as paid.", number=inv.number)
    if action == "mark-unpaid":
        change_paid_state(db.session, inv, False, actor)
        return _("Invoice %(number)s is marked as unpaid.", number=inv.number)
    if action == "send":
        send(db.session, inv, actor)
        return _("Invoice %(number)s is on its way.", number=inv.number)
    if action == "delete":
        delete_draft_invoice(db.session, inv, actor)
        return _("The draft is deleted.")
    if action == "void":
        void(db.session, inv, actor)
        return _("Invoice %(number)s is void.", number=inv.number)
    note = credit(
        db.session,
        inv,
        actor,
        reason=request.form.get("reason", ""),
        lines=_credit_lines(request.form, inv),
    )
    return _("Credit note %(number)s is issued.", number=note.number)


@bp.post("/invoices/<invoice_id>/actions/<action>")
@admin_view
def act(invoice_id: str, action: str):
    """Carry out a confirmed action; refusals come back as a message, never an error page."""
    if action not in ACTIONS:
        abort(404)
    inv = load_invoice(invoice_id)
    back = url_for("admin.invoice", invoice_id=inv.public_id)
    if request.form.get("confirmed") != "yes":
        return redirect(url_for("admin.confirm", invoice_id=inv.public_id, action=action), 303)
    tenant_id = inv.tenant_id
    try:
        message = _perform(action, inv)
    except AdminActionRefused as exc:
        return refused(exc, back)
    flash(message, "success")
    if action == "delete":
        company = db.session.get_one(Tenant, tenant_id)
        return redirect(url_for("admin.company", company_id=company.public_id), code=303)
    return redirect(back, code=303)
