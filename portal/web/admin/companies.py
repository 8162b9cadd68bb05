"""Admin pages of one company: settings, subscriptions, usage, invoices, generate now."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.catalog.queries import company_subscriptions
from portal.catalog.settings import (
    SELF_SERVICE_FIELDS,
    SettingsInvalid,
    company_settings,
    settings_dict,
    update_company_settings,
)
from portal.db import utcnow
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.queries import admin_invoice_list
from portal.invoices.run import generate_now, start_invoice_generation
from portal.ops.audit import N_, AdminActionRefused
from portal.ops.queries import recent_jobs
from portal.tenancy.companies import (
    CompanyInvalid,
    archive_company,
    create_company,
    update_company,
)
from portal.tenancy.models import Tenant
from portal.usage.queries import quota_usage_report
from portal.usage.reports import start_quota_report
from portal.web.admin.blueprint import bp
from portal.web.admin.common import (
    current_actor,
    load_company,
    parse_date,
    refused,
    translated,
)
from portal.web.admin.company_forms import (
    company_form_data,
    company_values,
    form_context,
    form_values,
)
from portal.web.admin.documents import companies_page
from portal.web.admin.team_panel import team_panel
from portal.web.guards import admin_view
from portal.web.htmx import render_page

#: Check boxes of the settings form (absent from a form post when unticked).
BOOLEAN_FIELDS = (
    "auto_finalize",
    "auto_send",
    "auto_collect",
    "show_drafts_to_tenant",
    *SELF_SERVICE_FIELDS,
)


def _settings_form_values(form: Any) -> dict[str, Any]:
    """The complete settings dict from a posted form (text stays text: the service parses)."""
    values: dict[str, Any] = {
        "billing_day": form.get("billing_day", ""),
        "payment_terms_days": form.get("payment_terms_days", ""),
        "discount_percent": form.get("discount_percent", "").strip().replace(",", "."),
        "notes": form.get("notes") or None,
    }
    for name in BOOLEAN_FIELDS:
        values[name] = form.get(name) == "on"
    return values


def _usage_rows(tenant: Tenant) -> list:
    start = utcnow().date().replace(day=1)
    start_at = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    end_at = dt.datetime.combine(
        (start + dt.timedelta(days=32)).replace(day=1), dt.time(), tzinfo=dt.UTC
    )
    return quota_usage_report(db.session, [tenant.id], start_at, end_at)


def _company_page(
    tenant: Tenant,
    values: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
    invite: dict | None = None,
):
    settings = company_settings(db.session, tenant)
    rows, _total = admin_invoice_list(
        db.session, tenant_id=tenant.id, order_by=[Invoice.created_at.desc()], limit=20
    )
    invoices = [invoice for invoice, _company in rows]
    subscriptions = company_subscriptions(db.session, tenant)
    jobs = recent_jobs(db.session, tenant_id=tenant.id, limit=5)
    today = utcnow().date()
    response = render_page(
        "admin/company.html",
        "admin/_settings_form.html",
        tenant=tenant,
        values=values or settings_dict(settings),
        errors={k: translated(v) for k, v in (errors or {}).items()},
        saved=settings.id is not None,
        invoices=invoices,
        subscriptions=subscriptions,
        usage=_usage_rows(tenant),
        jobs=jobs,
        this_month=today.strftime("%Y-%m"),
        month_start=today.replace(day=1),
        today=today,
        **team_panel(tenant, invite),
    )
    response.status_code = status
    return response


@bp.get("/companies/<company_id>")
@admin_view
def company(company_id: str):
    """One company: billing settings form, subscriptions, usage against quota, invoices."""
    return _company_page(load_company(company_id))


@bp.post("/companies/<company_id>/settings")
@admin_view
def update_settings(company_id: str):
    """Save the settings form; errors re-render the form inline (200, so htmx swaps it)."""
    tenant = load_company(company_id)
    values = _settings_form_values(request.form)
    try:
        update_company_settings(db.session, tenant, values, current_actor())
    except SettingsInvalid as exc:
        db.session.rollback()
        return _company_page(tenant, values, exc.errors)
    flash(_("Billing settings of %(company)s saved.", company=tenant.name), "success")
    return redirect(url_for("admin.company", company_id=tenant.public_id), code=303)


@bp.get("/companies/<company_id>/generate")
@admin_view
def confirm_generate(company_id: str):
    """Confirmation step of "generate invoice now", with the month to bill."""
    tenant = load_company(company_id)
    return render_template(
        "admin/confirm_generate.html",
        tenant=tenant,
        month=request.args.get("month") or utcnow().strftime("%Y-%m"),
    )


@bp.post("/companies/<company_id>/generate")
@admin_view
def generate(company_id: str):
    """Generate (and per the settings finalize) the company's invoice of a month now."""
    tenant = load_company(company_id)
    month = request.form.get("month", "").strip()
    try:
        invoice = generate_now(db.session, tenant, month, current_actor())
    except AdminActionRefused as exc:
        return refused(exc, url_for("admin.company", company_id=tenant.public_id))
    flash(_("The invoice of %(month)s is ready.", month=month), "success")
    return redirect(url_for("admin.invoice", invoice_id=invoice.public_id), code=303)


@bp.post("/companies/<company_id>/jobs")
@admin_view
def start_company_job(company_id: str):
    """Queue an invoice generation or a quota usage report for the company."""
    tenant = load_company(company_id)
    kind = request.form.get("kind")
    try:
        if kind == "invoice_generation":
            job = start_invoice_generation(
                db.session, tenant, request.form.get("month", "").strip(), current_actor()
            )
        elif kind == "quota_report":
            start, start_ok = parse_date(request.form.get("start"))
            end, end_ok = parse_date(request.form.get("end"))
            if not (start and end and start_ok and end_ok):
                raise AdminActionRefused("invalid_range", N_("Enter a start and an end date."))
            job = start_quota_report(db.session, tenant, start, end, current_actor())
        else:
            raise AdminActionRefused("unknown_job", N_("Unknown job."))
    except AdminActionRefused as exc:
        return refused(exc, url_for("admin.company", company_id=tenant.public_id))
    flash(_("The job is queued."), "success")
    return redirect(url_for("admin.job", job_id=job.public_id), code=303)


# --- Setting up companies: new, edit, archive ------------------------------------------------


@bp.post("/companies")
@admin_view
def create_company_view():
    """Create a company from the form on the companies list; errors re-render the list with
    the form open and its fields marked (200, so htmx swaps it)."""
    data = company_form_data(request.form)
    try:
        tenant = create_company(db.session, data, current_actor())
    except CompanyInvalid as exc:
        db.session.rollback()
        return companies_page(form_values(data), exc.errors)
    flash(_("Company %(company)s created.", company=tenant.name), "success")
    return redirect(url_for("admin.company", company_id=tenant.public_id), code=303)


def _edit_page(tenant: Tenant, values: dict, errors: dict | None = None):
    return render_page(
        "admin/company_edit.html",
        "admin/_company_form.html",
        tenant=tenant,
        action=url_for("admin.update_company_view", company_id=tenant.public_id),
        **form_context(values, errors),
    )


@bp.get("/companies/<company_id>/edit")
@admin_view
def edit_company(company_id: str):
    """Edit a company: name, slug, seller, currency, language and billing profile."""
    tenant = load_company(company_id)
    if tenant.archived_at is not None:
        flash(_("The company is archived: its data can be read, not changed."), "error")
        return redirect(url_for("admin.company", company_id=tenant.public_id), code=303)
    return _edit_page(tenant, company_values(tenant))


@bp.post("/companies/<company_id>/edit")
@admin_view
def update_company_view(company_id: str):
    """Save the company form; errors re-render it inline."""
    tenant = load_company(company_id)
    data = company_form_data(request.form)
    try:
        update_company(db.session, tenant, data, current_actor())
    except CompanyInvalid as exc:
        db.session.rollback()
        return _edit_page(load_company(company_id), form_values(data), exc.errors)
    except AdminActionRefused as exc:
        return refused(exc, url_for("admin.company", company_id=company_id))
    flash(_("Company %(company)s saved.", company=tenant.name), "success")
    return redirect(url_for("admin.company", company_id=tenant.public_id), code=303)


@bp.get("/companies/<company_id>/archive")
@admin_view
def confirm_archive(company_id: str):
    """Confirmation step of archiving a company."""
    tenant = load_company(company_id)
    return render_template("admin/confirm_archive.html", tenant=tenant)


@bp.post("/companies/<company_id>/archive")
@admin_view
def archive(company_id: str):
    """Archive the company: no new invoices; its history stays readable."""
    tenant = load_company(company_id)
    try:
        archive_company(db.session, tenant, current_actor())
    except AdminActionRefused as exc:
        return refused(exc, url_for("admin.company", company_id=tenant.public_id))
    flash(_("%(company)s is archived: it gets no new invoices.", company=tenant.name), "success")
    return redirect(url_for("admin.company", company_id=tenant.public_id), code=303)
