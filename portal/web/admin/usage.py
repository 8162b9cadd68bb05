"""Admin page that records a company's usage by hand: one event through the batch path the
console API uses (``usage/services.ingest_usage``), and the latest records."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.catalog.queries import company_subscriptions
from portal.extensions import db
from portal.ops.audit import N_
from portal.tenancy.models import Tenant
from portal.usage.queries import consumption_page
from portal.usage.services import (
    EventResult,
    UsageBatchRefused,
    UsageEvent,
    ingest_usage,
)
from portal.web.admin.blueprint import bp
from portal.web.admin.common import load_company, locale_decimal, number_example
from portal.web.guards import admin_view

#: Latest records shown under the form.
RECENT = 20
#: A refused event's reason → the form field it is shown on and the message there (the
#: service's own messages are English API text; the page says it in the viewer's words).
REFUSALS = {
    "invalid_metric": ("metric", N_("Enter a metric of 1 to 60 letters, digits or _ . : -")),
    "invalid_quantity": (
        "quantity",
        N_("Enter a quantity from 0 to 999,999,999,999 with at most six decimal places."),
    ),
    "invalid_timestamp": ("occurred_at", N_("Enter a date and time.")),
    "invalid_key": ("form", N_("The form has expired. Please enter the usage again.")),
    "idempotency_conflict": (
        "form",
        N_("This form was already sent with other values. Please enter the usage again."),
    ),
}


def _metrics(tenant: Tenant) -> list[str]:
    """The metrics the company's subscriptions bill, offered as suggestions."""
    return sorted(
        {
            item.price.metric
            for subscription in company_subscriptions(db.session, tenant)
            for item in subscription.items
            if item.price.metric
        }
    )


def _page(tenant: Tenant, values: dict[str, str], errors: dict[str, str]):
    records, total = consumption_page(db.session, tenant, limit=RECENT)
    return render_template(
        "admin/usage.html",
        tenant=tenant,
        values=values,
        errors=errors,
        metrics=_metrics(tenant),
        records=records,
        total=total,
    )


def _blank(tenant: Tenant) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0, tzinfo=None)
    metrics = _metrics(tenant)
    return {
        "metric": metrics[0] if len(metrics) == 1 else "",
        "quantity": "",
        "occurred_at": now.isoformat(timespec="minutes"),
        # One key per form shown: sending the same form twice records the usage once.
        "key": f"admin-{uuid.uuid4()}",
    }


def _quantity(text: str, errors: dict[str, str]) -> Decimal | None:
    """The quantity as the viewer writes numbers (``locale_decimal``)."""
    if not text:
        errors["quantity"] = _("Enter a quantity.")
        return None
    number = locale_decimal(text)
    if number is None:
        errors["quantity"] = _("Enter a number such as %(example)s.", example=number_example())
    return number


def _occurred_at(text: str, errors: dict[str, str]) -> dt.datetime | None:
    """The time from the form's ``YYYY-MM-DDTHH:MM`` field, read as UTC (the label says so)."""
    if not text:
        errors["occurred_at"] = _("Enter a date and time.")
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        errors["occurred_at"] = _("Enter a date and time as YYYY-MM-DD HH:MM.")
        return None
    if when.tzinfo is not None:
        errors["occurred_at"] = _("Enter a date and time as YYYY-MM-DD HH:MM.")
        return None
    return when.replace(tzinfo=dt.UTC)


def _refusal(result: EventResult, errors: dict[str, str]) -> None:
    if result.status == "period_invoiced":
        if result.invoice_number:
            errors["occurred_at"] = _(
                "Invoice %(number)s already bills this period: enter a time in the next "
                "period, or correct that invoice with a credit note.",
                number=result.invoice_number,
            )
        else:
            errors["occurred_at"] = _(
                "A draft invoice already bills this period: delete the draft and generate "
                "it again, or enter a time in the next period."
            )
        return
    field, message = REFUSALS.get(result.code or "", ("form", N_("The usage was not recorded.")))
    errors[field] = _(message)


@bp.get("/companies/<company_id>/usage")
@admin_view
def usage(company_id: str):
    """The company's latest usage records and the form that records one."""
    tenant = load_company(company_id)
    return _page(tenant, _blank(tenant), {})


@bp.post("/companies/<company_id>/usage")
@admin_view
def record_usage(company_id: str):
    """Record one usage event; errors re-render the form inline (200, so htmx swaps it)."""
    tenant = load_company(company_id)
    values = {
        name: (request.form.get(name) or "").strip()
        for name in ("metric", "quantity", "occurred_at", "key")
    }
    errors: dict[str, str] = {}
    if tenant.archived_at is not None:
        errors["form"] = _("The company is archived: its data can be read, not changed.")
    if not values["metric"]:
        errors["metric"] = _("Enter the metric.")
    quantity = _quantity(values["quantity"], errors)
    when = _occurred_at(values["occurred_at"], errors)
    if not errors:
        event = UsageEvent(values["key"], values["metric"], quantity, when)
        try:
            [result] = ingest_usage(db.session, tenant, [event])
        except UsageBatchRefused as exc:
            _refusal(exc.results[0], errors)
    if errors:
        db.session.rollback()
        return _page(tenant, values, errors)
    if result.status == "duplicate":
        flash(_("This usage was recorded already; it counts once."), "info")
    else:
        flash(
            _(
                "%(quantity)s %(metric)s recorded for %(company)s.",
                quantity=values["quantity"],
                metric=values["metric"],
                company=tenant.name,
            ),
            "success",
        )
    return redirect(url_for("admin.usage", company_id=tenant.public_id), code=303)
