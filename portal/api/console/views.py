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
import uuid
from typing import Any
from urllib.parse import quote_from_bytes

import sqlalchemy as sa
from flask import Response, current_app, g, jsonify, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import ValidationError

from portal.api.console.idempotency import idempotent
from portal.api.console.jsonpatch import PatchError, apply_patch
from portal.api.console.query import Field, QueryError, QueryLanguage, project
from portal.api.console.schemas import (
    NULLABLE_SETTINGS,
    ActionResponse,
    CompanyBillingSettingsResource,
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
    SettingsPatch,
    collection_query,
    patch_problems,
    select_query,
)
from portal.api.core import (
    Api,
    ApiError,
    jsonable as _jsonable,
    error_entry,
    json_max_depth,
    load_json,
    request_id,
    request_json,
    unstorable_text,
)
from portal.api.openapi import DocExtras, register_docs
from portal.catalog.models import CompanyBillingSettings
from portal.db import parse_public_id
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ops.models import Job, JobStatus
from portal.tenancy.models import Tenant, TokenKind

PREFIX = "/api/v1/organizations/companies"
#: Longest request target (path and query string as sent, percent-encoded) answered; longer
#: is a 400 in the error shape (type uri_too_long). It stays below the request-line limit of
#: the server in front (gunicorn's limit_request_line, 4094 bytes by default, counts the
#: method and protocol too), so a request that server lets through gets this JSON answer, not
#: its HTML 414.
MAX_REQUEST_TARGET = 4000
#: A request id: a UUID (RFC 9562 text form).
REQUEST_ID_PATTERN = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
#: An X-Client-Version the server accepts (and echoes), e.g. 3.6.1.
CLIENT_VERSION_PATTERN = r"^[0-9A-Za-z.+-]{1,40}$"


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
    body = {"data": _wire(_jsonable(data)), **_wire(top)}
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


@bp.before_request
def _check_request() -> None:
    """What every operation refuses (400) before anything else: a request target longer than
    MAX_REQUEST_TARGET, an X-Request-id that is not a UUID and a malformed X-Client-Version.
    The correlation id is the request id when it is a UUID."""
    sent = request.headers.get("X-Request-id")
    valid = sent is not None and re.fullmatch(REQUEST_ID_PATTERN, sent) is not None
    g.api_request_id = str(uuid.UUID(sent)) if valid else str(uuid.uuid4())  # type: ignore[arg-type]
    if _target_length() > MAX_REQUEST_TARGET:
        raise ApiError(
            400,
            [
                error_entry(
                    [],
                    f"The URL is longer than {MAX_REQUEST_TARGET} bytes; shorten filter, sort "
                    "or select.",
                    "uri_too_long",
                )
            ],
        )
    if sent is not None and not valid:
        raise ApiError(
            400,
            [
                error_entry(
                    ["header", "X-Request-id"],
                    "X-Request-id must be a UUID, e.g. ba547d14-c556-42bb-b85c-eeeb16e2f5e7.",
                    "invalid_request_id",
                )
            ],
        )
    version = request.headers.get("X-Client-Version")
    if version is not None and not re.fullmatch(CLIENT_VERSION_PATTERN, version):
        raise ApiError(
            400,
            [
                error_entry(
                    ["header", "X-Client-Version"],
                    "X-Client-Version must be 1 to 40 of A-Z a-z 0-9 . + -, e.g. 3.6.1.",
                    "invalid_client_version",
                )
            ],
        )


def _target_length() -> int:
    """Bytes of the request target as sent (path and query string, still percent-encoded)."""
    environ = request.environ
    query = environ.get("QUERY_STRING", "")
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # gunicorn, werkzeug
    if raw:
        length = len(raw.encode("latin-1", "replace"))
        if "?" in raw:
            return length
    else:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        length = len(quote_from_bytes(path.encode("latin-1", "replace"), safe="/"))
    return length + (len(query) + 1 if query else 0)


@bp.after_request
def _echo_headers(response: Response) -> Response:
    """X-Client-Version is echoed; the correlation id is always sent."""
    version = request.headers.get("X-Client-Version")
    if version and re.fullmatch(CLIENT_VERSION_PATTERN, version):
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
    return ApiError(
        400,
        [
            error_entry(["query", exc.param, *loc], message, type_)
            for loc, message, type_ in exc.entries
        ],
    )


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


SETTINGS = QueryLanguage("Settings", _settings_fields(), CompanyBillingSettingsResource)
_SETTINGS_SELECT = [{"propertyPath": "/companyName"}, {"propertyPath": "/billingDay"}]
SettingsCollectionQuery = collection_query(
    "SettingsCollectionQuery",
    SETTINGS,
    {
        "filter": [
            {"property": "/autoSend", "operation": "equals", "value": True},
            {
                "operation": "or",
                "items": [
                    {"property": "/billingDay", "operation": "greaterThan", "value": 14},
                    {"property": "/companyName", "operation": "contains", "value": "gmbh"},
                ],
            },
        ],
        "sort": [{"property": "/companyName", "direction": "ascending"}],
        "select": _SETTINGS_SELECT,
    },
)
SettingsSelectQuery = select_query("SettingsSelectQuery", SETTINGS, _SETTINGS_SELECT)


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
    query=SettingsCollectionQuery,
    response=SettingsCollection,
    tags=["Billing settings"],
)
def get_all_settings(query):
    """Billing settings of every company, with filter, sort, select, limit and offset."""
    base = sa.select(Tenant, CompanyBillingSettings).outerjoin(
        CompanyBillingSettings, CompanyBillingSettings.tenant_id == Tenant.id
    )
    return _collection(
        query,
        base,
        SETTINGS,
        default_order=[Tenant.name.asc(), Tenant.id.asc()],
        tie_breaker=Tenant.id.asc(),
        resource=lambda row: _settings_resource(row[0], row[1]),
    )


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
    tenant = _company(companyUid)
    return _one(_settings_resource(tenant, _settings_of(tenant)), query.select, SETTINGS)


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
    from portal.admin.services import SettingsInvalid, update_company_settings

    tenant = _company(companyUid)
    settings = _settings_of(tenant)
    current = _settings_resource(tenant, settings)
    patch = request_json(("application/json", "application/json-patch+json"), _patch_location)
    if patch is None:
        raise ApiError(
            400, [error_entry(["body"], "Send a JSON Patch array as JSON.", "invalid_body")]
        )
    patch = _checked_patch(patch)
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
    return _one(_settings_resource(tenant, _settings_of(tenant)), query.select, SETTINGS)


def _checked_patch(patch: Any) -> list[dict]:
    """The patch as SettingsPatch reads it (400 at the operation when it does not allow it;
    ``7.0`` is the integer 7), with each ``remove`` of a setting that may be empty as the
    ``replace`` with null it means."""
    try:
        checked = SettingsPatch.model_validate(patch, strict=True).model_dump(by_alias=True)
    except ValidationError as exc:
        raise ApiError(
            400,
            [error_entry(["body", *loc], msg, type_) for loc, msg, type_ in patch_problems(exc)],
        ) from None
    return [
        {"op": "replace", "path": item["path"], "value": None}
        if item["op"] == "remove" and item["path"][1:] in NULLABLE_SETTINGS
        else item
        for item in checked
    ]


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


INVOICES = QueryLanguage("Invoice", _invoice_fields(), InvoiceResource)
_INVOICE_SELECT = [{"propertyPath": "/number"}, {"propertyPath": "/totals/amountDueMinor"}]
InvoiceCollectionQuery = collection_query(
    "InvoiceCollectionQuery",
    INVOICES,
    {
        "filter": [
            {"property": "/status", "operation": "in", "value": ["Finalized", "Sent"]},
            {"property": "/totals/amountDueMinor", "operation": "greaterThan", "value": 0},
        ],
        "sort": [{"property": "/issueDate", "direction": "descending"}],
        "select": _INVOICE_SELECT,
    },
    date_range=True,
)
InvoiceSelectQuery = select_query("InvoiceSelectQuery", INVOICES, _INVOICE_SELECT)


def a_year_after(day: dt.date) -> dt.date:
    """The same day a year later (28 February for 29 February); the last date at the end."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        if day.year == dt.date.max.year:
            return dt.date.max
        return day.replace(year=day.year + 1, day=28)  # 29 February


def _date_range(query) -> sa.ColumnElement[bool]:
    start, end = query.fromDate, query.toDate
    if start > end:
        raise ApiError(
            400, [error_entry(["query", "toDate"], "toDate is before fromDate.", "invalid_range")]
        )
    if end > a_year_after(start):
        raise ApiError(
            400,
            [error_entry(["query", "toDate"], "The range is at most one year.", "range_too_long")],
        )
    return _RANGE_DAY.between(start, end)


def _invoices(query, tenant: Tenant | None):
    base = sa.select(Invoice, Tenant).join(Tenant, Tenant.id == Invoice.tenant_id)
    base = base.where(_date_range(query))
    if tenant is not None:
        base = base.where(Invoice.tenant_id == tenant.id)
    return _collection(
        query,
        base,
        INVOICES,
        default_order=[_RANGE_DAY.desc(), Invoice.id.desc()],
        tie_breaker=Invoice.id.desc(),
        resource=lambda row: _invoice_resource(row[0], row[1]),
    )


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
    return _invoices(query, _company(companyUid))


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
    invoice = _invoice(invoiceUid)
    resource = _invoice_resource(invoice, db.session.get(Tenant, invoice.tenant_id))
    return _one(resource, query.select, INVOICES)


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
    query=PdfDownloadQuery,
    scope=None,
    tags=["Invoices"],
    errors=(404,),
)
def invoice_pdf_download(invoiceUid: str, query: PdfDownloadQuery):
    """The PDF behind a link from "Download Invoice"; an expired or altered link is 404."""
    from portal.api.billing.views import _file
    from portal.documents.formats import render_document

    try:
        signed = _pdf_signer().loads(query.t or "", max_age=PDF_LINK_SECONDS)
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


def _collection(
    query, base, language: QueryLanguage, *, default_order, tie_breaker, resource
) -> Response:
    _refuse_bad_query_json(filter=query.filter, sort=query.sort, select=query.select)
    try:
        condition = language.condition(query.filter)
        order = language.order(query.sort)
        paths = language.paths(query.select)
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


def _one(resource: dict, select: str | None, language: QueryLanguage) -> Response:
    _refuse_bad_query_json(select=select)
    try:
        data = project(_jsonable_dict(resource), language.paths(select))
    except QueryError as exc:
        raise _query_error(exc) from None
    return console_envelope(data)


def _action(data: Any) -> Response:
    return console_envelope(_jsonable_dict(data) if isinstance(data, dict) else data, errors=[])


def _jsonable_dict(resource: dict) -> dict:
    """Dates and datetimes as ISO 8601 strings, so select and JSON see the same values."""
    return _wire(resource)


def _wire(value: Any) -> Any:
    """``value`` with every date as ``YYYY-MM-DD`` and every datetime as RFC 3339 in UTC
    (``2026-01-31T12:00:00+00:00``), inside dicts and lists too; Flask's JSON would send
    HTTP dates (``Sat, 31 Jan 2026 12:00:00 GMT``) instead."""
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(item) for item in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# --- the OpenAPI document --------------------------------------------------------------------

_UID = {"type": "string", "format": "uuid"}
_HEADERS = [
    {
        "name": "X-Request-id",
        "in": "header",
        "required": False,
        "description": (
            "Random UUID for idempotence: a changing operation repeated with the same id "
            "within 5 minutes answers what the first one answered (X-Idempotent-Replay: "
            "true) and does nothing again; the same id with another request is a 409. It is "
            "also the correlation id. Anything but a UUID is a 400."
        ),
        "schema": {"type": "string", "format": "uuid", "pattern": REQUEST_ID_PATTERN},
        "example": "ba547d14-c556-42bb-b85c-eeeb16e2f5e7",
    },
    {
        "name": "X-Client-Version",
        "in": "header",
        "required": False,
        "description": "Version of the API the client supports; echoed. Malformed is a 400.",
        "schema": {"type": "string", "pattern": CLIENT_VERSION_PATTERN},
        "example": "3.6.1",
    },
]
_WRITES = ("POST", "PATCH", "PUT", "DELETE")


#: Where a response's ids lead (OpenAPI links, so a client or a stateful test can follow).
_COMPANY_OPERATIONS = (
    "get_settings",
    "patch_settings",
    "get_company_invoices",
    "generate_invoices",
    "generate_quota_report",
)
_INVOICE_OPERATIONS = (
    "get_invoice",
    "delete_invoice",
    "invoice_pdf_link",
    "change_paid_state",
    "send_invoice",
)
_JOB_OPERATIONS = ("get_job", "get_job_csv")


def _links(targets: tuple[str, ...], name: str, pointer: str) -> dict:
    return {
        target: {"operationId": target, "parameters": {name: f"$response.body#{pointer}"}}
        for target in targets
    }


_LINKS = {
    "get_all_settings": _links(_COMPANY_OPERATIONS, "companyUid", "/data/0/companyUid"),
    "get_settings": _links(_COMPANY_OPERATIONS, "companyUid", "/data/companyUid"),
    "get_all_invoices": _links(_INVOICE_OPERATIONS, "invoiceUid", "/data/0/instanceUid"),
    "get_company_invoices": _links(_INVOICE_OPERATIONS, "invoiceUid", "/data/0/instanceUid"),
    "get_invoice": _links(_INVOICE_OPERATIONS, "invoiceUid", "/data/instanceUid"),
    "generate_invoices": _links(_JOB_OPERATIONS, "jobUid", "/data/jobUid"),
    "generate_quota_report": _links(_JOB_OPERATIONS, "jobUid", "/data/jobUid"),
}


def _complete_operation(op, entry: dict) -> None:
    """What the declarations leave out: idempotency (409, replay header, 413 of bodies read
    to compare them) on changing operations, 200 beside 202 for queued jobs, the links of
    ids, and the front server's own answer to a request line too long for it."""
    responses = entry["responses"]
    error = responses["400"]
    if op.method in _WRITES:
        responses["409"] = {
            **error,
            "description": (
                "The state does not allow it (e.g. not a draft, a failed JSON Patch test), or "
                "the X-Request-id was used for another request within 5 minutes, or its first "
                "request is still running or failed."
            ),
        }
        responses["413"] = {
            **error,
            "description": "The body is larger than MAX_CONTENT_LENGTH (1 MiB by default).",
        }
        replay = {
            "description": "true when this is the stored answer to an earlier request with "
            "the same X-Request-id.",
            "schema": {"type": "string", "enum": ["true"]},
        }
        for status, response in responses.items():
            if status.startswith("2") or status in ("400", "404", "409"):
                response["headers"] = {**response.get("headers", {}), "X-Idempotent-Replay": replay}
    if op.status == 202:
        queued = responses["202"]
        responses["200"] = {
            **queued,
            "description": "The job was already finished when the answer was made.",
        }
        queued["description"] = "The job is queued; follow Location (or links.self)."
        queued["headers"] = {
            **queued.get("headers", {}),
            "Location": {
                "description": "The job's URL.",
                "required": True,
                "schema": {"type": "string"},
            },
        }
    for status in ("200", "202"):
        if status in responses and op.operation_id in _LINKS:
            responses[status]["links"] = _LINKS[op.operation_id]
    responses["414"] = {
        "description": (
            "The request line is longer than the server in front of the app takes (gunicorn: "
            "4094 bytes by default, the development server 65536); that server answers, in "
            f"HTML. Requests within {MAX_REQUEST_TARGET} bytes of target never get it."
        ),
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    entry["responses"] = dict(sorted(responses.items()))


register_docs(
    api,
    DocExtras(
        description=(
            "The provider console's billing operations. Answers are `{data, meta}`; changes "
            "answer `{errors: [], data, meta}`; errors are `{errors: [{code, type, message, "
            "location}], data: null, meta: {correlationId}}` with their 4xx status, and server "
            "errors answer 520. Dates are `YYYY-MM-DD`, date-times RFC 3339 in UTC. Money is "
            "integer minor units (`*Minor`) beside `currency`; decimals are strings. "
            "`filter`, `sort` and `select` are JSON arrays in the query string. The request "
            f"target (path and query string as sent, percent-encoded) is at most "
            f"{MAX_REQUEST_TARGET} bytes (a 400 of type uri_too_long beyond), below the "
            "request-line limit of gunicorn (4094 bytes by default), whose own answer is an "
            "HTML 414. Each API token has its own rate limit for the whole surface "
            "(RATELIMIT_API, default 600 per minute): beyond it, 429 with Retry-After."
        ),
        headers=_HEADERS,
        path_params={
            "companyUid": (_UID, "Company UID."),
            "invoiceUid": (_UID, "Invoice UID."),
            "jobUid": (_UID, "Job UID."),
        },
        errors={
            400: (
                "Invalid input: a query parameter, the body, X-Request-id (not a UUID), "
                f"X-Client-Version, or a request target over {MAX_REQUEST_TARGET} bytes "
                "(uri_too_long); each problem is one entry of `errors` with its location."
            ),
            500: "Server error: answered as 520, with the correlation id that is in the log.",
        },
        response_headers={
            "X-Correlation-Id": {
                "description": "The correlation id (the X-Request-id when one was sent).",
                "required": True,
                "schema": {"type": "string"},
            },
            "X-Client-Version": {
                "description": "The X-Client-Version of the request, when it sent one.",
                "schema": {"type": "string"},
            },
        },
        status_headers={
            401: {
                "WWW-Authenticate": {
                    "description": "Bearer challenge.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
            429: {
                "Retry-After": {
                    "description": "Seconds until the token may send again.",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                }
            },
        },
        bodies={"patch_settings": SettingsPatch},
        customize=_complete_operation,
    ),
)
