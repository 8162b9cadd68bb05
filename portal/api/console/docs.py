"""What the provider console's OpenAPI document says beyond the declared operations."""

from __future__ import annotations

from portal.api.console.envelope import (
    CLIENT_VERSION_PATTERN,
    MAX_REQUEST_TARGET,
    REQUEST_ID_PATTERN,
)
from portal.api.console.schemas import SettingsPatch
from portal.api.console.setup_schemas import CompanyPatch
from portal.api.openapi import DocExtras

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


#: The extras of the console's document (``register_docs``).
DOC_EXTRAS = DocExtras(
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
        "invitationUid": (_UID, "Invitation UID."),
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
    bodies={"patch_settings": SettingsPatch, "patch_company": CompanyPatch},
    customize=_complete_operation,
)
