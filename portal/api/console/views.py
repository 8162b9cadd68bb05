"""The provider-console billing API under /api/v1 (provider-console-billing-api.txt).

Admin tokens only. Every change goes through the subject packages' services (the same as the
admin pages), which validate, audit and record ledger movements; reads go through the
subject packages' queries. Envelope and request checks are in envelope.py, resources in
serializers.py, collections (filter, sort, select) in collections.py, the error map in
errors.py and the OpenAPI extras in docs.py: this module holds the operations. Changing
operations are idempotent per X-Request-id for five minutes (idempotency.py). Errors answer
``{errors, data: null, meta}`` with their 4xx status; server errors answer 520 with the
correlation id that is also in the log.
"""

from __future__ import annotations

import datetime as dt

from flask import Response, jsonify, url_for

from portal.api.console import serializers as out
from portal.api.console.collections import (
    INVOICES,
    SETTINGS,
    InvoiceCollectionQuery,
    InvoiceSelectQuery,
    SettingsCollectionQuery,
    SettingsSelectQuery,
    date_range,
    selected_paths,
    selection,
)
from portal.api.console.common import company_or_404, not_found, token_actor
from portal.api.console.docs import DOC_EXTRAS
from portal.api.console.envelope import (
    PREFIX,
    action,
    check_request,
    console_envelope,
    console_error_body,
    console_status,
    echo_headers,
    listing,
    one,
)
from portal.api.console.errors import ERRORS, refused
from portal.api.console.idempotency import idempotent
from portal.api.console.jsonpatch import apply_patch, checked_patch, patch_location, settings_values
from portal.api.console.pdf_links import pdf_link_opens, pdf_link_token
from portal.api.console.schemas import (
    ActionResponse,
    ConsoleErrorResponse,
    DeletedResource,
    GenerateQuery,
    InvoiceAnswer,
    InvoiceCollection,
    InvoiceResource,
    JobResource,
    PaidStateQuery,
    PdfDownloadQuery,
    PdfLink,
    ReportQuery,
    ResourceResponse,
    SettingsAnswer,
    SettingsCollection,
)
from portal.api.core import Api, ApiError, error_entry, file_response, request_json
from portal.api.openapi import register_docs
from portal.catalog.queries import company_settings_list, stored_company_settings
from portal.catalog.settings import update_company_settings
from portal.documents.formats import render_document
from portal.extensions import db
from portal.invoices.actions import change_paid_state as change
from portal.invoices.actions import delete_draft_invoice, send
from portal.invoices.models import Invoice
from portal.invoices.queries import admin_invoice_list, find_invoice
from portal.invoices.run import start_invoice_generation
from portal.ops.audit import AdminActionRefused
from portal.ops.models import Job, JobStatus
from portal.ops.queries import job_by_public_id
from portal.tenancy.models import Tenant, TokenKind
from portal.usage.reports import start_quota_report

api = Api(
    "api_console",
    __name__,
    PREFIX,
    title="Provider console billing API",
    area="admin",
    error_body=console_error_body,
    error_status=console_status,
    envelope=console_envelope,
    token_kind=TokenKind.ADMIN,
    error_schema=ConsoleErrorResponse,
    around=idempotent,
    errors=ERRORS,
)
bp = api.blueprint
bp.before_request(check_request)
bp.after_request(echo_headers)


def _invoice(invoice_uid: str) -> Invoice:
    invoice = find_invoice(db.session, invoice_uid)
    if invoice is None:
        raise not_found(["path", "invoiceUid"], "Invoice")
    return invoice


def _job(job_uid: str) -> Job:
    job = job_by_public_id(db.session, job_uid)
    if job is None:
        raise not_found(["path", "jobUid"], "Job")
    return job


def _invoice_resource(invoice: Invoice) -> dict:
    return out.invoice_resource(invoice, db.session.get_one(Tenant, invoice.tenant_id))


# --- Company billing settings --------------------------------------------------------------


@api.operation(
    "GET",
    "/billing/settings/",
    "Get Company Billing Settings",
    query=SettingsCollectionQuery,
    response=SettingsCollection,
    tags=["Billing settings"],
)
def get_all_settings(query):
    """Billing settings of every company, with filter, sort, select, limit and offset."""
    asked = selection(query, SETTINGS)
    rows, total = company_settings_list(
        db.session,
        where=asked.where,
        order_by=asked.order_by,
        limit=query.limit,
        offset=query.offset,
    )
    resources = [out.settings_resource(tenant, settings) for tenant, settings in rows]
    return listing(resources, total, asked.paths, query.offset)


@api.operation(
    "GET",
    "/<companyUid>/billing/settings/",
    "Get Billing Settings of Company",
    query=SettingsSelectQuery,
    response=SettingsAnswer,
    tags=["Billing settings"],
    errors=(404,),
)
def get_settings(companyUid: str, query):
    """Billing settings of one company (defaults when it has never been configured)."""
    tenant = company_or_404(companyUid)
    resource = out.settings_resource(tenant, stored_company_settings(db.session, tenant))
    return one(resource, selected_paths(query.select, SETTINGS))


@api.operation(
    "PATCH",
    "/<companyUid>/billing/settings/",
    "Modify Billing Settings of Company",
    query=SettingsSelectQuery,
    response=SettingsAnswer,
    scope="write",
    tags=["Billing settings"],
    errors=(404, 409),
)
def patch_settings(companyUid: str, query):
    """Change settings with an RFC 6902 JSON Patch array (add, replace, test, remove, move,
    copy), as application/json or application/json-patch+json. All or nothing: a failing
    ``test`` is a 409; an operation the SettingsPatch schema does not allow (an unknown or
    read-only path, a value the setting does not take) is a 400; neither changes anything.
    ``remove`` clears a setting that may be empty (paymentTermsDays, notes).
    """

    tenant = company_or_404(companyUid)
    current = out.settings_resource(tenant, stored_company_settings(db.session, tenant))
    patch = request_json(("application/json", "application/json-patch+json"), patch_location)
    if patch is None:
        raise ApiError(
            400, [error_entry(["body"], "Send a JSON Patch array as JSON.", "invalid_body")]
        )
    patched = apply_patch(current, checked_patch(patch))
    update_company_settings(db.session, tenant, settings_values(patched, current), token_actor())
    resource = out.settings_resource(tenant, stored_company_settings(db.session, tenant))
    return one(resource, selected_paths(query.select, SETTINGS))


# --- Invoices ------------------------------------------------------------------------------


def _invoices(query, tenant: Tenant | None) -> Response:
    start, end = date_range(query)
    asked = selection(query, INVOICES)
    rows, total = admin_invoice_list(
        db.session,
        tenant_id=tenant.id if tenant is not None else None,
        day_from=start,
        day_to=end,
        where=asked.where,
        order_by=asked.order_by,
        limit=query.limit,
        offset=query.offset,
    )
    resources = [out.invoice_resource(invoice, company) for invoice, company in rows]
    return listing(resources, total, asked.paths, query.offset)


@api.operation(
    "GET",
    "/billing/invoices/",
    "Get All Company Invoices",
    query=InvoiceCollectionQuery,
    response=InvoiceCollection,
    tags=["Invoices"],
)
def get_all_invoices(query):
    """Invoices of every company in a date range of at most one year (issue date; drafts by
    their period start), with filter, sort, select, limit (1-500) and offset."""
    return _invoices(query, None)


@api.operation(
    "GET",
    "/<companyUid>/billing/invoices",
    "Get All Invoices for Company",
    query=InvoiceCollectionQuery,
    response=InvoiceCollection,
    tags=["Invoices"],
    errors=(404,),
)
def get_company_invoices(companyUid: str, query):
    """One company's invoices in a date range of at most one year."""
    return _invoices(query, company_or_404(companyUid))


@api.operation(
    "GET",
    "/billing/invoices/<invoiceUid>",
    "Get Invoice",
    query=InvoiceSelectQuery,
    response=InvoiceAnswer,
    tags=["Invoices"],
    errors=(404,),
)
def get_invoice(invoiceUid: str, query):
    """One invoice of any company."""
    resource = _invoice_resource(_invoice(invoiceUid))
    return one(resource, selected_paths(query.select, INVOICES))


@api.operation(
    "DELETE",
    "/billing/invoices/<invoiceUid>",
    "Delete Invoice",
    response=ActionResponse[DeletedResource],
    scope="write",
    tags=["Invoices"],
    errors=(404, 409),
)
def delete_invoice(invoiceUid: str):
    """Delete a draft. A finalized invoice is refused (409): void it or issue a credit note."""
    invoice = _invoice(invoiceUid)
    uid = str(invoice.public_id)
    delete_draft_invoice(db.session, invoice, token_actor())
    return action({"instanceUid": uid, "deleted": True})


@api.operation(
    "GET",
    "/billing/invoices/<invoiceUid>/pdf",
    "Download Invoice",
    response=PdfLink,
    tags=["Invoices"],
    errors=(404,),
)
def invoice_pdf_link(invoiceUid: str):
    """A download link to the invoice's PDF (valid 10 minutes, no token needed to open it),
    as the reference returns it: a JSON string."""
    invoice = _invoice(invoiceUid)
    url = url_for(
        "api_console.invoice_pdf_download",
        invoiceUid=invoice.public_id,
        t=pdf_link_token(invoice.public_id),
        _external=True,
    )
    return jsonify(url)


@api.operation(
    "GET",
    "/billing/invoices/<invoiceUid>/pdf/download",
    "Download Invoice PDF File",
    files=("application/pdf",),
    query=PdfDownloadQuery,
    scope=None,
    tags=["Invoices"],
    errors=(404,),
)
def invoice_pdf_download(invoiceUid: str, query: PdfDownloadQuery):
    """The PDF behind a link from "Download Invoice"; an expired or altered link is 404."""
    if not pdf_link_opens(query.t, invoiceUid):
        raise ApiError(
            404, [error_entry(["query", "t"], "The link is expired or not valid.", "not_found")]
        )
    invoice = _invoice(invoiceUid)
    document = render_document(db.session, invoice, "pdf", invoice.language)
    return file_response(document.content, document.media_type, document.filename)


@api.operation(
    "POST",
    "/billing/invoices/<invoiceUid>/changePaidState",
    "Change Invoice Payment Status",
    query=PaidStateQuery,
    response=ActionResponse[InvoiceResource],
    scope="write",
    tags=["Invoices"],
    errors=(404, 409),
    raises={AdminActionRefused: refused(409, "query", "status")},
)
def change_paid_state(invoiceUid: str, query: PaidStateQuery):
    """Mark an issued invoice Paid or Unpaid; records a ledger movement and an audit entry."""
    invoice = _invoice(invoiceUid)
    change(db.session, invoice, query.status == "Paid", token_actor())
    return action(_invoice_resource(invoice))


@api.operation(
    "POST",
    "/billing/invoices/<invoiceUid>/send",
    "Send Invoice",
    response=ActionResponse[InvoiceResource],
    scope="write",
    tags=["Invoices"],
    errors=(404, 409),
)
def send_invoice(invoiceUid: str):
    """E-mail the invoice to the company's billing contact; finalized becomes sent."""
    invoice = _invoice(invoiceUid)
    send(db.session, invoice, token_actor())
    return action(_invoice_resource(invoice))


# --- Jobs: invoice generation and quota usage reports --------------------------------------


@api.operation(
    "POST",
    "/<companyUid>/billing/generateInvoices",
    "Generate Invoice for Company",
    query=GenerateQuery,
    response=ActionResponse[JobResource],
    status=202,
    scope="write",
    tags=["Jobs"],
    errors=(404,),
    raises={AdminActionRefused: refused(400, "query", "period")},
)
def generate_invoices(companyUid: str, query: GenerateQuery):
    """Queue the invoice generation of one month (default: the previous month) for a company.
    Answers 202 with the job; 200 when the job was already done when the answer was made.
    Progress and result at the job's URL."""
    tenant = company_or_404(companyUid)
    month = query.period or _previous_month()
    job = start_invoice_generation(db.session, tenant, month, token_actor())
    return _job_answer(job)


@api.operation(
    "POST",
    "/<companyUid>/billing/generateQuotaUsageReport",
    "Generate Quota Usage Report for Company",
    query=ReportQuery,
    response=ActionResponse[JobResource],
    status=202,
    scope="write",
    tags=["Jobs"],
    errors=(404,),
    raises={AdminActionRefused: refused(400, "query", "toDate")},
)
def generate_quota_report(companyUid: str, query: ReportQuery):
    """Queue a quota usage report (usage against quotas per metric) for the date range; the
    job's result holds the rows as JSON and CSV."""
    tenant = company_or_404(companyUid)
    job = start_quota_report(db.session, tenant, query.fromDate, query.toDate, token_actor())
    return _job_answer(job)


@api.operation(
    "GET",
    "/billing/jobs/<jobUid>",
    "Get Job",
    response=ResourceResponse[JobResource],
    tags=["Jobs"],
    errors=(404,),
)
def get_job(jobUid: str):
    """Status, progress and result of a queued job (invoice generation, quota report)."""
    return out.job_resource(_job(jobUid))


@api.operation(
    "GET",
    "/billing/jobs/<jobUid>/report.csv",
    "Download Quota Report CSV",
    files=("text/csv",),
    tags=["Jobs"],
    errors=(404,),
)
def get_job_csv(jobUid: str):
    """The quota usage report of a finished report job as CSV."""
    job = _job(jobUid)
    csv_text = (job.result or {}).get("csv") if isinstance(job.result, dict) else None
    if csv_text is None:
        raise ApiError(
            404, [error_entry(["path", "jobUid"], "This job has no CSV report (yet).", "not_found")]
        )
    response = Response(csv_text, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="quota-report-{job.public_id}.csv"'
    )
    return response


def _job_answer(job: Job) -> Response:
    # Commit before answering: the job is queued after the commit, and a job that is done
    # by the time the answer is made (an immediate queue, a quick worker) answers 200.
    db.session.commit()
    db.session.refresh(job)
    done = job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
    response = console_envelope(out.job_resource(job), 200 if done else 202, errors=[])
    if not done:
        response.headers["Location"] = url_for("api_console.get_job", jobUid=job.public_id)
    return response


def _previous_month() -> str:
    first = dt.date.today().replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


register_docs(api, DOC_EXTRAS)
