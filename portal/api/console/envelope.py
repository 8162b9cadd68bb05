"""The provider console's answers: ``{data, meta}``, changes ``{errors: [], data, meta}``,
errors ``{errors, data: null, meta}``, and the checks and headers of every request."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from urllib.parse import quote_from_bytes

from flask import Response, g, jsonify, request

from portal.api.console.query import project
from portal.api.core import ApiError, error_entry, jsonable, request_id

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


def correlation_meta(**extra: Any) -> dict[str, Any]:
    """``meta`` of every answer: the correlation id, plus e.g. ``pagingInfo``."""
    return {"correlationId": request_id(), **extra}


def whole_collection(rows: list[Any]) -> Response:
    """A collection answered whole (a company's few subscriptions, quotas, invitations): the
    envelope with paging info that says so."""
    return console_envelope(
        rows,
        meta=correlation_meta(pagingInfo={"total": len(rows), "count": len(rows), "offset": 0}),
    )


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
        "meta": correlation_meta(),
    }


def console_status(status: int) -> int:
    """Client errors keep their code (validation is 400 here); server errors are 520."""
    if status >= 500:
        return 520
    return 400 if status == 422 else status


def console_envelope(data: Any, status: int = 200, **top: Any) -> Response:
    body = {"data": wire(jsonable(data)), **wire(top)}
    body.setdefault("meta", correlation_meta())
    response = jsonify(body)
    response.status_code = status
    return response


def listing(resources: list[dict], total: int, paths: list[list[str]], offset: int) -> Response:
    """A page of a collection, each resource cut to ``paths`` (select), with its paging."""
    data = [project(wire(resource), paths) for resource in resources]
    return console_envelope(
        data,
        meta=correlation_meta(pagingInfo={"total": total, "count": len(data), "offset": offset}),
    )


def one(resource: dict, paths: list[list[str]]) -> Response:
    """One resource, cut to ``paths`` (select)."""
    return console_envelope(project(wire(resource), paths))


def action(data: Any) -> Response:
    """The answer of a change: ``{errors: [], data, meta}``."""
    return console_envelope(wire(data) if isinstance(data, dict) else data, errors=[])


def wire(value: Any) -> Any:
    """``value`` with every date as ``YYYY-MM-DD`` and every datetime as RFC 3339 in UTC
    (``2026-01-31T12:00:00+00:00``), inside dicts and lists too; Flask's JSON would send
    HTTP dates (``Sat, 31 Jan 2026 12:00:00 GMT``) instead."""
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def check_request() -> None:
    """What every operation refuses (400) before anything else: a request target longer than
    MAX_REQUEST_TARGET, an X-Request-id that is not a UUID and a malformed X-Client-Version.
    The correlation id is the request id when it is a UUID."""
    sent = request.headers.get("X-Request-id")
    valid = sent is not None and re.fullmatch(REQUEST_ID_PATTERN, sent) is not None
    g.api_request_id = str(uuid.UUID(sent)) if sent is not None and valid else str(uuid.uuid4())
    if target_length() > MAX_REQUEST_TARGET:
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


def target_length() -> int:
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


def echo_headers(response: Response) -> Response:
    """X-Client-Version is echoed; the correlation id is always sent."""
    version = request.headers.get("X-Client-Version")
    if version and re.fullmatch(CLIENT_VERSION_PATTERN, version):
        response.headers["X-Client-Version"] = version
    response.headers["X-Correlation-Id"] = request_id()
    return response
