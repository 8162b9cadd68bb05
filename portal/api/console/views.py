"""The provider-console billing API under /api/v1 (provider-console-billing-api.txt).

Admin tokens only. Every change goes through portal.admin.services (the same services as the
admin pages), which validate, audit and record ledger movements. Changing operations are
idempotent per X-Request-id for five minutes (idempotency.py). Errors answer
``{errors, data: null, meta}`` with their 4xx status; server errors answer 520 with the
correlation id that is also in the log.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from flask import Response, current_app, g, jsonify, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.api.console.idempotency import idempotent
from portal.api.console.jsonpatch import PatchError, apply_patch
from portal.api.console.query import (
    Field,
    QueryError,
    filter_condition,
    parse_json_array,
    project,
    select_paths,
    sort_order,
)
from portal.api.console.schemas import (
    ActionResponse,
    CollectionQuery,
    CollectionResponse,
    CompanyBillingSettingsResource,
    ConsoleErrorResponse,
    DeletedResource,
    GenerateQuery,
    InvoiceCollectionQuery,
    InvoiceResource,
    JobResource,
    PaidStateQuery,
    PdfLink,
    ReportQuery,
    ResourceResponse,
    SelectQuery,
)
from portal.api.core import (
    Api,
    ApiError,
    _jsonable,
    error_entry,
    json_max_depth,
    load_json,
    request_id,
    request_json,
    unstorable_text,
)
from portal.api.openapi import register_docs
from portal.catalog.models import CompanyBillingSettings
from portal.db import parse_public_id
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ops.models import Job, JobStatus
from portal.tenancy.models import Tenant, TokenKind

PREFIX = "/api/v1/organizations/companies"


def _meta(**extra: Any) -> dict[str, Any]:
    return {"correlationId": request_id(), **extra}


def console_error_body(status: int, detail: list[dict]) -> dict:
    """``{errors, data: null, meta}``: one error per detail entry."""
    return {
        "errors": [
            {
                "code": console_status(status),  # the HTTP status the error is sent with
                "type": entry.get("type", "error"),
                "message": entry.get("msg", ""),
                "location": "/".join(str(part) for part in entry.get("loc", [])),
            }
            for entry in detail
        ],
        "data": None,
        "meta": _meta(),
    }


def console_status(status: int) -> int:
    """Client errors keep their code (validation is 400 here); server errors are 520."""
    if status >= 500:
        return 520
    return 400 if status == 422 else status


def console_envelope(data: Any, status: int = 200, **top: Any) -> Response:
    body = {"data": _jsonable(data), **top}
    body.setdefault("meta", _meta())
    response = jsonify(body)
    response.status_code = status
    return response


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
)
bp = api.blueprint


@bp.after_request
def _echo_headers(response: Response) -> Response:
    """X-Client-Version is accepted and echoed; the correlation id is always sent."""
    version = request.headers.get("X-Client-Version")
    if version and re.fullmatch(r"[0-9A-Za-z.+-]{1,40}", version):
        response.headers["X-Client-Version"] = version
    response.headers["X-Correlation-Id"] = request_id()
    return response


def _actor():
    from portal.admin.services import Actor

    token = g.get("api_token")
    return Actor(
        label=f"api-token:{token.prefix}" if token else "api",
        token_id=token.id if token else None,
        ip_address=request.remote_addr,
        request_id=request.headers.get("X-Request-id") or request_id(),
    )


def _query_error(exc: QueryError) -> ApiError:
    return ApiError(400, [error_entry(["query", exc.param], exc.message, "invalid_query")])


def _by_uid(model: type, value: str, loc: str, what: str):
    """The row of ``model`` whose public id is ``value``; 404 (at ``loc``) otherwise."""
    uid = parse_public_id(value)
    row = (
        db.session.scalars(sa.select(model).where(model.public_id == uid)).first() if uid else None
    )
    if row is None:
        raise ApiError(404, [error_entry(["path", loc], f"{what} not found.", "not_found")])
    return row


def _company(company_uid: str) -> Tenant:
    return _by_uid(Tenant, company_uid, "companyUid", "Company")


def _invoice(invoice_uid: str) -> Invoice:
    return _by_uid(Invoice, invoice_uid, "invoiceUid", "Invoice")


def _refused(exc: Exception, loc: list[str]) -> ApiError:
    """An admin action the services refuse (e.g. deleting a finalized invoice): 409."""
    return ApiError(
        409, [error_entry(loc, getattr(exc, "message", str(exc)), getattr(exc, "code", "refused"))]
    )


# --- Company billing settings --------------------------------------------------------------

_SETTINGS_COLUMNS = {
    "billingDay": ("billing_day", 1),
    "paymentTermsDays": ("payment_terms_days", None),
    "autoFinalize": ("auto_finalize", True),
    "autoSend": ("auto_send", False),
    "autoCollect": ("auto_collect", True),
    "showDraftsToTenant": ("show_drafts_to_tenant", False),
    "discountPercent": ("discount_percent", 0),
    "notes": ("notes", None),
}
_READ_ONLY = ("companyUid", "companyName")


def _settings_fields() -> dict[str, Field]:
    kinds = {
        "billingDay": "integer",
        "paymentTermsDays": "integer",
        "autoFinalize": "boolean",
        "autoSend": "boolean",
        "autoCollect": "boolean",
        "showDraftsToTenant": "boolean",
        "discountPercent": "decimal",
        "notes": "string",
    }
    fields = {
        "/companyUid": Field(Tenant.public_id, "uuid"),
        "/companyName": Field(Tenant.name, "string"),
    }
    for name, (column, default) in _SETTINGS_COLUMNS.items():
        expression = getattr(CompanyBillingSettings, column)
        if default is not None:
            expression = sa.func.coalesce(expression, default)
        fields[f"/{name}"] = Field(expression, kinds[name])
    return fields


def _settings_resource(tenant: Tenant, settings: CompanyBillingSettings | None) -> dict:
    from portal.admin.services import settings_dict

    values = settings_dict(settings) if settings is not None else {}
    resource = {"companyUid": str(tenant.public_id), "companyName": tenant.name}
    for name, (column, default) in _SETTINGS_COLUMNS.items():
        value = values.get(column, default)
        resource[name] = str(value) if name == "discountPercent" and value is not None else value
    return resource


def _settings_of(tenant: Tenant) -> CompanyBillingSettings | None:
    return db.session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant.id)
    ).first()


@api.operation(
    "GET",
    "/billing/settings/",
    "Get Company Billing Settings",
    query=CollectionQuery,
    response=CollectionResponse[CompanyBillingSettingsResource],
    tags=["Billing settings"],
)
def get_all_settings(query: CollectionQuery):
    """Billing settings of every company, with filter, sort, select, limit and offset."""
    fields = _settings_fields()
    base = sa.select(Tenant, CompanyBillingSettings).outerjoin(
        CompanyBillingSettings, CompanyBillingSettings.tenant_id == Tenant.id
    )
    return _collection(
        query,
        base,
        fields,
        default_order=[Tenant.name.asc(), Tenant.id.asc()],
        tie_breaker=Tenant.id.asc(),
        resource=lambda row: _settings_resource(row[0], row[1]),
    )


@api.operation(
    "GET",
    "/<companyUid>/billing/settings/",
    "Get Billing Settings of Company",
    query=SelectQuery,
    response=ResourceResponse[CompanyBillingSettingsResource],
    tags=["Billing settings"],
    errors=(404,),
)
def get_settings(companyUid: str, query: SelectQuery):
    """Billing settings of one company (defaults when it has never been configured)."""
    tenant = _company(companyUid)
    return _one(_settings_resource(tenant, _settings_of(tenant)), query.select)


@api.operation(
    "PATCH",
    "/<companyUid>/billing/settings/",
    "Modify Billing Settings of Company",
    query=SelectQuery,
    response=ResourceResponse[CompanyBillingSettingsResource],
    scope="write",
    tags=["Billing settings"],
    errors=(404, 409),
)
def patch_settings(companyUid: str, query: SelectQuery):
    """Change settings with an RFC 6902 JSON Patch array (add, replace, test, remove, move,
    copy). All or nothing: a failing ``test``, an unknown or read-only path, or an invalid
    value changes nothing. Removing a nullable setting clears it; others cannot be removed.
    """
    from portal.admin.services import SettingsInvalid, update_company_settings

    tenant = _company(companyUid)
    settings = _settings_of(tenant)
    current = _settings_resource(tenant, settings)
    patch = request_json(("application/json", "application/json-patch+json"), _patch_location)
    if patch is None:
        raise ApiError(
            400, [error_entry(["body"], "Send a JSON Patch array as JSON.", "invalid_body")]
        )
    try:
        patched = apply_patch(current, patch)
    except PatchError as exc:
        status = 409 if exc.code == "test_failed" else 400
        raise ApiError(status, [error_entry(["body", exc.index], exc.message, exc.code)]) from None
    values = _settings_values(patched, current)
    try:
        update_company_settings(db.session, tenant, values, _actor())
    except SettingsInvalid as exc:
        db.session.rollback()
        camel = {column: name for name, (column, _) in _SETTINGS_COLUMNS.items()}
        raise ApiError(
            400,
            [
                error_entry(["body", f"/{camel.get(field, field)}"], message, "invalid_value")
                for field, message in exc.errors.items()
            ],
        ) from None
    db.session.commit()
    return _one(_settings_resource(tenant, _settings_of(tenant)), query.select)


def _patch_location(patch: Any, loc: list) -> list:
    """A problem in an operation's ``value`` located at the setting it changes (``/notes``),
    as the settings' own errors are; anything else at its place in the patch."""
    if len(loc) >= 2 and loc[1] == "value" and isinstance(patch, list):
        operation = patch[loc[0]] if isinstance(loc[0], int) else None
        if isinstance(operation, dict) and isinstance(operation.get("path"), str):
            if unstorable_text(operation["path"]) is None:
                return [operation["path"], *loc[2:]]
    return loc


def _settings_values(patched: Any, current: dict) -> dict:
    """The patched document as the services' complete settings dict."""
    if not isinstance(patched, dict):
        raise ApiError(
            400, [error_entry(["body"], "The settings must stay an object.", "invalid_patch")]
        )
    for name in _READ_ONLY:
        if patched.get(name) != current[name]:
            raise ApiError(
                400, [error_entry(["body", f"/{name}"], f"/{name} is read-only.", "read_only")]
            )
    unknown = set(patched) - set(_SETTINGS_COLUMNS) - set(_READ_ONLY)
    if unknown:
        raise ApiError(
            400,
            [
                error_entry(["body", f"/{name}"], f"Unknown setting /{name}.", "unknown_property")
                for name in sorted(unknown)
            ],
        )
    values = {}
    for name, (column, default) in _SETTINGS_COLUMNS.items():
        if name not in patched:
            if default is not None:
                raise ApiError(
                    400,
                    [error_entry(["body", f"/{name}"], f"/{name} cannot be removed.", "required")],
                )
            values[column] = None
        else:
            values[column] = patched[name]
    return values


# --- Invoices ------------------------------------------------------------------------------

_STATUS_NAMES = {
    InvoiceStatus.DRAFT: "Draft",
    InvoiceStatus.FINALIZED: "Finalized",
    InvoiceStatus.SENT: "Sent",
    InvoiceStatus.PAID: "Paid",
    InvoiceStatus.UNCOLLECTIBLE: "Uncollectible",
    InvoiceStatus.VOID: "Void",
}
_RANGE_DAY = sa.func.coalesce(Invoice.issue_date, Invoice.period_start)


def _invoice_fields() -> dict[str, Field]:
    return {
        "/instanceUid": Field(Invoice.public_id, "uuid"),
        "/companyUid": Field(Tenant.public_id, "uuid"),
        "/companyName": Field(Tenant.name, "string"),
        "/number": Field(Invoice.number, "string"),
        "/status": Field(
            Invoice.status, "enum", {name: status for status, name in _STATUS_NAMES.items()}
        ),
        "/currency": Field(Invoice.currency, "string"),
        "/issueDate": Field(Invoice.issue_date, "date"),
        "/dueDate": Field(Invoice.due_date, "date"),
        "/periodStart": Field(Invoice.period_start, "date"),
        "/periodEnd": Field(Invoice.period_end, "date"),
        "/totals/taxInclusiveMinor": Field(Invoice.tax_inclusive_minor, "integer"),
        "/totals/amountDueMinor": Field(Invoice.amount_due_minor, "integer"),
        "/totals/taxMinor": Field(Invoice.tax_minor, "integer"),
        "/createdAt": Field(Invoice.created_at, "datetime"),
    }


def _invoice_resource(invoice: Invoice, tenant: Tenant) -> dict:
    return {
        "instanceUid": str(invoice.public_id),
        "companyUid": str(tenant.public_id),
        "companyName": tenant.name,
        "number": invoice.number,
        "status": _STATUS_NAMES[invoice.status],
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


def _date_range(query: InvoiceCollectionQuery) -> sa.ColumnElement[bool]:
    start, end = query.fromDate, query.toDate
    if start > end:
        raise ApiError(
            400, [error_entry(["query", "toDate"], "toDate is before fromDate.", "invalid_range")]
        )
    try:
        limit = start.replace(year=start.year + 1)
    except ValueError:  # 29 February
        limit = start.replace(year=start.year + 1, day=28)
    if end > limit:
        raise ApiError(
            400,
            [error_entry(["query", "toDate"], "The range is at most one year.", "range_too_long")],
        )
    return _RANGE_DAY.between(start, end)


def _invoices(query: InvoiceCollectionQuery, tenant: Tenant | None):
    base = sa.select(Invoice, Tenant).join(Tenant, Tenant.id == Invoice.tenant_id)
    base = base.where(_date_range(query))
    if tenant is not None:
        base = base.where(Invoice.tenant_id == tenant.id)
    return _collection(
        query,
        base,
        _invoice_fields(),
        default_order=[_RANGE_DAY.desc(), Invoice.id.desc()],
        tie_breaker=Invoice.id.desc(),
        resource=lambda row: _invoice_resource(row[0], row[1]),
    )


@api.operation(
    "GET",
    "/billing/invoices/",
    "Get All Company Invoices",
    query=InvoiceCollectionQuery,
    response=CollectionResponse[InvoiceResource],
    tags=["Invoices"],
)
def get_all_invoices(query: InvoiceCollectionQuery):
    """Invoices of every company in a date range of at most one year (issue date; drafts by
    their period start), with filter, sort, select, limit (1-500) and offset."""
    return _invoices(query, None)


@api.operation(
    "GET",
    "/<companyUid>/billing/invoices",
    "Get All Invoices for Company",
    query=InvoiceCollectionQuery,
    response=CollectionResponse[InvoiceResource],
    tags=["Invoices"],
    errors=(404,),
)
def get_company_invoices(companyUid: str, query: InvoiceCollectionQuery):
    """One company's invoices in a date range of at most one year."""
    return _invoices(query, _company(companyUid))


@api.operation(
    "GET",
    "/billing/invoices/<invoiceUid>",
    "Get Invoice",
    query=SelectQuery,
    response=ResourceResponse[InvoiceResource],
    tags=["Invoices"],
    errors=(404,),
)
def get_invoice(invoiceUid: str, query: SelectQuery):
    """One invoice of any company."""
    invoice = _invoice(invoiceUid)
    return _one(_invoice_resource(invoice, db.session.get(Tenant, invoice.tenant_id)), query.select)


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
    from portal.admin.services import AdminActionRefused, delete_draft_invoice

    invoice = _invoice(invoiceUid)
    uid = str(invoice.public_id)
    try:
        delete_draft_invoice(db.session, invoice, _actor())
    except AdminActionRefused as exc:
        raise _refused(exc, ["path", "invoiceUid"]) from None
    db.session.commit()
    return _action({"instanceUid": uid, "deleted": True})


def _pdf_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="console-invoice-pdf")


#: How long a PDF download link works.
PDF_LINK_SECONDS = 600


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
    token = _pdf_signer().dumps(str(invoice.public_id))
    url = url_for(
        "api_console.invoice_pdf_download", invoiceUid=invoice.public_id, t=token, _external=True
    )
    return jsonify(url)


@api.operation(
    "GET",
    "/billing/invoices/<invoiceUid>/pdf/download",
    "Download Invoice PDF File",
    files=("application/pdf",),
    scope=None,
    tags=["Invoices"],
    errors=(404,),
)
def invoice_pdf_download(invoiceUid: str):
    """The PDF behind a link from "Download Invoice"; an expired or altered link is 404."""
    from portal.api.billing.views import _file
    from portal.documents.formats import render_document

    try:
        signed = _pdf_signer().loads(request.args.get("t", ""), max_age=PDF_LINK_SECONDS)
    except (BadSignature, SignatureExpired):
        signed = None
    if signed is None or signed != str(parse_public_id(invoiceUid) or ""):
        raise ApiError(
            404, [error_entry(["query", "t"], "The link is expired or not valid.", "not_found")]
        )
    invoice = _invoice(invoiceUid)
    document = render_document(db.session, invoice, "pdf", invoice.language)
    db.session.commit()
    return _file(document.content, document.media_type, document.filename)


@api.operation(
    "POST",
    "/billing/invoices/<invoiceUid>/changePaidState",
    "Change Invoice Payment Status",
    query=PaidStateQuery,
    response=ActionResponse[InvoiceResource],
    scope="write",
    tags=["Invoices"],
    errors=(404, 409),
)
def change_paid_state(invoiceUid: str, query: PaidStateQuery):
    """Mark an issued invoice Paid or Unpaid; records a ledger movement and an audit entry."""
    from portal.admin.services import AdminActionRefused
    from portal.admin.services import change_paid_state as change

    invoice = _invoice(invoiceUid)
    try:
        change(db.session, invoice, query.status == "Paid", _actor())
    except AdminActionRefused as exc:
        raise _refused(exc, ["query", "status"]) from None
    db.session.commit()
    return _action(_invoice_resource(invoice, db.session.get(Tenant, invoice.tenant_id)))


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
    from portal.admin.services import AdminActionRefused, send

    invoice = _invoice(invoiceUid)
    try:
        send(db.session, invoice, _actor())
    except AdminActionRefused as exc:
        raise _refused(exc, ["path", "invoiceUid"]) from None
    db.session.commit()
    return _action(_invoice_resource(invoice, db.session.get(Tenant, invoice.tenant_id)))


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
)
def generate_invoices(companyUid: str, query: GenerateQuery):
    """Queue the invoice generation of one month (default: the previous month) for a company.
    Answers 202 with the job; 200 when the job was already done when the answer was made.
    Progress and result at the job's URL."""
    from portal.admin.services import AdminActionRefused, start_invoice_generation

    tenant = _company(companyUid)
    month = query.period or _previous_month()
    try:
        job = start_invoice_generation(db.session, tenant, month, _actor())
    except AdminActionRefused as exc:
        raise ApiError(400, [error_entry(["query", "period"], exc.message, exc.code)]) from None
    db.session.commit()
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
)
def generate_quota_report(companyUid: str, query: ReportQuery):
    """Queue a quota usage report (usage against quotas per metric) for the date range; the
    job's result holds the rows as JSON and CSV."""
    from portal.admin.services import AdminActionRefused, start_quota_report

    tenant = _company(companyUid)
    try:
        job = start_quota_report(db.session, tenant, query.fromDate, query.toDate, _actor())
    except AdminActionRefused as exc:
        raise ApiError(400, [error_entry(["query", "toDate"], exc.message, exc.code)]) from None
    db.session.commit()
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
    return _job_resource(_job(jobUid))


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


def _job(job_uid: str) -> Job:
    return _by_uid(Job, job_uid, "jobUid", "Job")


def _job_resource(job: Job) -> dict:
    from portal.admin.services import job_dict

    data = job_dict(job)
    resource = {
        "jobUid": str(job.public_id),
        "kind": data.get("kind", job.kind),
        "status": str(data.get("status", job.status)),
        "progress": data.get("progress", {}),
        "params": data.get("params", {}),
        "result": data.get("result"),
        "error": data.get("error"),
        "createdAt": job.created_at,
        "startedAt": job.started_at,
        "finishedAt": job.finished_at,
        "links": {"self": url_for("api_console.get_job", jobUid=job.public_id)},
    }
    if isinstance(job.result, dict) and "csv" in job.result:
        resource["links"]["csv"] = url_for("api_console.get_job_csv", jobUid=job.public_id)
    return resource


def _job_answer(job: Job) -> Response:
    db.session.refresh(job)
    done = job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
    response = console_envelope(_job_resource(job), 200 if done else 202, errors=[])
    if not done:
        response.headers["Location"] = url_for("api_console.get_job", jobUid=job.public_id)
    return response


def _previous_month() -> str:
    first = dt.date.today().replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


# --- shared --------------------------------------------------------------------------------


def _refuse_bad_query_json(**params: str | None) -> None:
    """``filter``, ``sort`` and ``select`` are JSON: nested too deeply, or holding text no
    column stores, they are a 400 at that parameter (malformed JSON is query.py's to say)."""
    for name, raw in params.items():
        if not raw:
            continue
        try:
            load_json(raw, max_depth=json_max_depth())
        except ApiError as exc:
            problems = [entry for entry in exc.detail if entry["type"] != "json_invalid"]
            if problems:
                raise ApiError(
                    400, [error_entry(["query", name], e["msg"], e["type"]) for e in problems]
                ) from None


def _collection(query, base, fields, *, default_order, tie_breaker, resource) -> Response:
    _refuse_bad_query_json(filter=query.filter, sort=query.sort, select=query.select)
    try:
        condition = filter_condition(parse_json_array(query.filter, "filter"), fields)
        order = sort_order(parse_json_array(query.sort, "sort"), fields)
        paths = select_paths(parse_json_array(query.select, "select"))
    except QueryError as exc:
        raise _query_error(exc) from None
    if condition is not None:
        base = base.where(condition)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery())) or 0
    rows = db.session.execute(
        base.order_by(*(order or default_order), tie_breaker)
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    try:
        data = [project(_jsonable_dict(resource(row)), paths) for row in rows]
    except QueryError as exc:
        raise _query_error(exc) from None
    return console_envelope(
        data,
        meta=_meta(pagingInfo={"total": total, "count": len(data), "offset": query.offset}),
    )


def _one(resource: dict, select: str | None) -> Response:
    _refuse_bad_query_json(select=select)
    try:
        data = project(_jsonable_dict(resource), select_paths(parse_json_array(select, "select")))
    except QueryError as exc:
        raise _query_error(exc) from None
    return console_envelope(data)


def _action(data: Any) -> Response:
    return console_envelope(_jsonable_dict(data) if isinstance(data, dict) else data, errors=[])


def _jsonable_dict(resource: dict) -> dict:
    """Dates and datetimes as ISO strings, so select and JSON see the same values."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        return value

    return convert(resource)


register_docs(api)
