"""The account surface's answers: the DTO itself, and every error as a GenericResponse."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from pydantic import BaseModel

from portal.api.accounts.schemas import GenericResponse
from portal.api.core import request_id

#: Status code → the ``code`` of a GenericResponse.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    504: "gateway_timeout",
}


def generic_error_body(status: int, detail: list[dict[str, Any]]) -> dict[str, Any]:
    """A GenericResponseDTO from ``detail`` entries (``{loc, msg, type}``)."""
    status = account_status(status)
    errors = [
        {
            "field": ".".join(str(part) for part in entry.get("loc", [])),
            "message": entry.get("msg", ""),
            "type": entry.get("type", ""),
        }
        for entry in detail
    ]
    return GenericResponse(
        status=status,
        code=_CODES.get(status, "error"),
        message=errors[0]["message"] if errors else _CODES.get(status, "error"),
        errors=errors,
        request_id=request_id(),
    ).model_dump(mode="json", by_alias=True)


def account_status(status: int) -> int:
    """Validation errors (422 elsewhere) are 400 in this surface, as its reference lists."""
    return 400 if status == 422 else status


def dto_envelope(data: Any, status: int = 200, **top: Any) -> Response:
    """The DTO itself, camelCase, without an envelope."""
    body = data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else data
    response = jsonify(body)
    response.status_code = status
    return response
