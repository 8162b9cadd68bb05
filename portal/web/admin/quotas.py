"""Admin page of a company's quotas: its allowance of a metric per billing period, set,
changed and removed through ``usage/quotas.py`` (as the console API and the demo seed do)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _

from portal.extensions import db
from portal.ops.audit import AdminActionRefused
from portal.tenancy.models import Tenant
from portal.usage.quotas import QuotaInvalid, company_quotas, find_quota, remove_quota, set_quota
from portal.web.admin.blueprint import bp
from portal.web.admin.common import (
    current_actor,
    load_company,
    locale_decimal,
    number_example,
    refused,
    translated,
)
from portal.web.guards import admin_view


def _page(tenant: Tenant, values: dict[str, str], errors: dict[str, str]):
    return render_template(
        "admin/quotas.html",
        tenant=tenant,
        quotas=company_quotas(db.session, tenant),
        values=values,
        errors=errors,
    )


def _back(tenant: Tenant):
    return redirect(url_for("admin.quotas", company_id=tenant.public_id), code=303)


@bp.get("/companies/<company_id>/quotas")
@admin_view
def quotas(company_id: str):
    """The company's quotas and the form that sets one (a metric's quota again: changed)."""
    tenant = load_company(company_id)
    values = {"metric": request.args.get("metric", "")}
    quota = find_quota(db.session, tenant, values["metric"]) if values["metric"] else None
    if quota is not None:  # "Change" fills the form with the quota's figures
        # As the viewer writes numbers, so that sending it back reads the same figure.
        values["limit"] = format_decimal(quota.limit, format="#,##0.######")
        values["is_hard"] = "on" if quota.is_hard else ""
    return _page(tenant, values, {})


@bp.post("/companies/<company_id>/quotas")
@admin_view
def set_quota_view(company_id: str):
    """Set a quota; errors re-render the form inline (200, so htmx swaps it)."""
    tenant = load_company(company_id)
    values = {name: (request.form.get(name) or "").strip() for name in ("metric", "limit")}
    values["is_hard"] = "on" if request.form.get("is_hard") else ""
    errors: dict[str, str] = {}
    limit = locale_decimal(values["limit"]) if values["limit"] else None
    if values["limit"] and limit is None:
        errors["limit"] = _("Enter a number such as %(example)s.", example=number_example())
    if not errors:
        try:
            set_quota(
                db.session,
                tenant,
                {"metric": values["metric"], "limit": limit, "is_hard": bool(values["is_hard"])},
                current_actor(),
            )
        except QuotaInvalid as exc:
            errors = {field: translated(message) for field, message in exc.errors.items()}
        except AdminActionRefused as exc:
            errors = {"form": translated(exc.message)}
    if errors:
        db.session.rollback()
        return _page(tenant, values, errors)
    flash(_("The quota of %(metric)s is set.", metric=values["metric"]), "success")
    return _back(tenant)


@bp.get("/companies/<company_id>/quotas/<metric>/remove")
@admin_view
def confirm_remove_quota(company_id: str, metric: str):
    """Confirmation before a quota is removed."""
    tenant = load_company(company_id)
    quota = find_quota(db.session, tenant, metric)
    if quota is None:
        abort(404)
    return render_template("admin/quota_remove.html", tenant=tenant, quota=quota)


@bp.post("/companies/<company_id>/quotas/<metric>/remove")
@admin_view
def remove_quota_view(company_id: str, metric: str):
    """Remove the quota; the metric's usage is then only reported."""
    tenant = load_company(company_id)
    if find_quota(db.session, tenant, metric) is None:
        abort(404)
    try:
        remove_quota(db.session, tenant, metric, current_actor())
    except AdminActionRefused as exc:
        return refused(exc, url_for("admin.quotas", company_id=tenant.public_id))
    flash(_("The quota of %(metric)s is removed.", metric=metric), "success")
    return _back(tenant)
