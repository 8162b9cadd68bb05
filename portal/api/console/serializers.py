"""Resources of the provider-console API from the portal's rows; no queries, no rules.

Dates and datetimes stay Python values here; the envelope writes them as the API does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import url_for

from portal.catalog.models import CompanyBillingSettings, Coupon
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ops.models import Job, JobStatus
from portal.tenancy.models import Tenant

#: The API's name of each invoice state.
STATUS_NAMES = {
    InvoiceStatus.DRAFT: "Draft",
    InvoiceStatus.FINALIZED: "Finalized",
    InvoiceStatus.SENT: "Sent",
    InvoiceStatus.PAID: "Paid",
    InvoiceStatus.UNCOLLECTIBLE: "Uncollectible",
    InvoiceStatus.VOID: "Void",
}
#: Each setting of the resource -> (its column, its value when never configured; None for
#: a setting that may be empty).
SETTINGS_COLUMNS: dict[str, tuple[str, Any]] = {
    "billingDay": ("billing_day", 1),
    "paymentTermsDays": ("payment_terms_days", None),
    "autoFinalize": ("auto_finalize", True),
    "autoSend": ("auto_send", False),
    "autoCollect": ("auto_collect", True),
    "showDraftsToTenant": ("show_drafts_to_tenant", False),
    "discountPercent": ("discount_percent", 0),
    "notes": ("notes", None),
    "selfServiceQuantity": ("self_service_quantity", True),
    "selfServicePriceSwitch": ("self_service_price_switch", True),
    "selfServiceCancel": ("self_service_cancel", True),
}
#: Properties of the settings resource that no change may alter.
READ_ONLY = ("companyUid", "companyName")


def settings_resource(tenant: Tenant, settings: CompanyBillingSettings | None) -> dict:
    """The company's settings (the defaults when never configured); the discount is a
    decimal string without trailing zeros (``"12.5"``)."""
    resource: dict[str, Any] = {"companyUid": str(tenant.public_id), "companyName": tenant.name}
    for name, (column, default) in SETTINGS_COLUMNS.items():
        value = getattr(settings, column) if settings is not None else default
        if name == "discountPercent":
            value = format(Decimal(value or 0).normalize(), "f")
        resource[name] = value
    return resource


def invoice_resource(invoice: Invoice, tenant: Tenant) -> dict:
    return {
        "instanceUid": str(invoice.public_id),
        "companyUid": str(tenant.public_id),
        "companyName": tenant.name,
        "number": invoice.number,
        "status": STATUS_NAMES[invoice.status],
        "paidState": "Paid" if invoice.status == InvoiceStatus.PAID else "Unpaid",
        "currency": invoice.currency,
        "issueDate": invoice.issue_date,
        "dueDate": invoice.due_date,
        "periodStart": invoice.period_start,
        "periodEnd": invoice.period_end,
        "totals": {
            "linesMinor": invoice.lines_total_minor,
            "allowancesMinor": invoice.allowance_total_minor,
            "chargesMinor": invoice.charge_total_minor,
            "taxExclusiveMinor": invoice.tax_exclusive_minor,
            "taxMinor": invoice.tax_minor,
            "taxInclusiveMinor": invoice.tax_inclusive_minor,
            "amountDueMinor": invoice.amount_due_minor,
            "amountPaidMinor": invoice.amount_paid_minor,
            "amountCreditedMinor": invoice.amount_credited_minor,
            "amountOpenMinor": invoice.amount_open_minor,
        },
        "createdAt": invoice.created_at,
        "finalizedAt": invoice.finalized_at,
        "sentAt": invoice.sent_at,
        "paidAt": invoice.paid_at,
    }


def job_resource(job: Job) -> dict:
    """A job with its progress, parameters (without the tenant ids) and result, and links."""
    percent = job.percent
    if percent is None and job.status == JobStatus.SUCCEEDED:
        percent = 100
    links = {"self": url_for("api_console.get_job", jobUid=job.public_id)}
    resource = {
        "jobUid": str(job.public_id),
        "kind": job.kind,
        "status": str(job.status),
        "progress": {
            "done": job.progress_done or 0,
            "total": job.progress_total,
            "percent": percent,
        },
        "params": {k: v for k, v in (job.params or {}).items() if k != "tenant_ids"},
        "result": job.result,
        "error": job.error,
        "createdAt": job.created_at,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        "links": links,
    }
    if isinstance(job.result, dict) and "csv" in job.result:
        links["csv"] = url_for("api_console.get_job_csv", jobUid=job.public_id)
    return resource


def coupon_terms(coupon: Coupon) -> dict[str, Any]:
    """What a coupon takes off and for how long (the catalog's coupon resource and the
    coupons on a subscription)."""
    return {
        "couponUid": str(coupon.public_id),
        "code": coupon.code,
        "name": coupon.name,
        "percentOff": None
        if coupon.percent_off is None
        else f"{Decimal(coupon.percent_off).normalize():f}",
        "amountOffMinor": coupon.amount_off_minor,
        "currency": coupon.currency,
        "duration": coupon.duration.value,
        "durationPeriods": coupon.duration_periods,
    }
