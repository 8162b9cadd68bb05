"""The machinery every JSON surface shares: declared operations, envelopes, errors, tokens.

An operation is declared once with :meth:`Api.operation`: its path, the pydantic models of
its query, body and response, and the scope its token needs. The same declaration validates
the request, wraps the answer in the surface's envelope and becomes the OpenAPI document
(:mod:`portal.api.openapi`), so the document cannot drift from what the code accepts.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from portal.extensions import csrf, db
from portal.tenancy.models import ApiToken, TokenKind
from portal.tenancy.services import authenticate_token

#: Version of the API surfaces, reported in every ``meta``.
API_VERSION = "v1"
#: Request ids clients may send; anything else is replaced by a fresh one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class ApiError(Exception):
    """An error answered in the surface's error shape.

    :param status: HTTP status code.
    :param detail: entries of ``{"loc": [...], "msg": ..., "type": ...}``.
    """

    def __init__(self, status: int, detail: list[dict[str, Any]], headers: dict | None = None):
        super().__init__(detail[0]["msg"] if detail else str(status))
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def error_entry(loc: list[str | int], msg: str, type_: str, **extra: Any) -> dict[str, Any]:
    """One entry of ``detail``, in the HTTPValidationError shape of the reference."""
    return {"loc": list(loc), "msg": msg, "type": type_, **extra}


def not_found(name: str, what: str) -> ApiError:
    """404 for an object that does not exist or belongs to another tenant (indistinguishable)."""
    return ApiError(404, [error_entry(["path", name], f"{what} not found.", "not_found")])


def request_id() -> str:
    """The client's X-Request-Id when usable, else one made for this request."""
    if "api_request_id" not in g:
        sent = request.headers.get("X-Request-Id", "")
        g.api_request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
    return g.api_request_id


def meta(**extra: Any) -> dict[str, Any]:
    return {"request_id": request_id(), "api_version": API_VERSION, **extra}


def envelope(data: Any, status: int = 200, **top: Any) -> Response:
    """The current surface's success envelope (``{data, meta}`` for the tenant surface)."""
    api = surface_of_request()
    return (api.envelope if api else default_envelope)(data, status, **top)


def _jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [_jsonable(item) for item in data]
    return data


def default_envelope(data: Any, status: int = 200, **top: Any) -> Response:
    """``{data, meta}`` (plus e.g. ``pagination``) as a JSON response."""
    response = jsonify({"data": _jsonable(data), **top, "meta": meta()})
    response.status_code = status
    return response


def detail_body(status: int, detail: list[dict[str, Any]]) -> dict[str, Any]:
    """The tenant surface's error body: ``{detail: [...]}`` (HTTPValidationError)."""
    return {"detail": detail}


def error_response(
    status: int,
    detail: list[dict[str, Any]],
    headers: Mapping | None = None,
    api: Api | None = None,
):
    """An error in the shape of ``api`` (the surface of the request when not given)."""
    api = api or surface_of_request()
    body = api.error_body(status, detail) if api else detail_body(status, detail)
    response = jsonify(body)
    response.status_code = api.error_status(status) if api else status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def pydantic_detail(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    """Pydantic's errors as ``detail`` entries located in ``where`` (query, body, path)."""
    entries = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        entries.append(error_entry([where, *err["loc"]], err["msg"], err["type"]))
    return entries


# --- Operations ----------------------------------------------------------------------------


@dataclass
class Operation:
    """One declared endpoint; the source of its validation and of its OpenAPI entry."""

    method: str
    path: str  # Flask rule, e.g. "/invoices/<invoice_id>"
    summary: str
    view: Callable
    operation_id: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: Any = None  # a pydantic model (the whole envelope) or None for files
    status: int = 200
    #: "read" or "write": the token scope needed; None for a public operation.
    scope: str | None = "read"
    #: Media types of a file answer (downloads), instead of a JSON ``response``.
    files: tuple[str, ...] = ()
    #: Extra documented statuses besides the ones every operation has.
    errors: tuple[int, ...] = ()
    path_params: dict[str, str] = field(default_factory=dict)  # name -> description
    redirects: bool = False


#: Every JSON surface, so errors outside a view (unknown path, 405) keep its shape.
SURFACES: list[Api] = []


def surface_of_request() -> Api | None:
    """The surface whose URL prefix the current path starts with (the longest)."""
    matches = [api for api in SURFACES if request.path.startswith(api.url_prefix)]
    return max(matches, key=lambda api: len(api.url_prefix)) if matches else None


class Api:
    """A JSON surface: a blueprint plus the operations declared on it.

    :param error_body: ``(status, detail) -> body`` of the surface's error shape; ``detail``
        entries are ``{loc, msg, type}`` (default: the tenant surface's ``{detail}``).
    :param error_status: maps a status before it is sent (e.g. 5xx -> 520).
    :param envelope: ``(data, status, **top) -> Response`` of a successful answer.
    :param token_kind: the kind of API token the surface accepts.
    :param error_schema: the pydantic model of the error body, for the OpenAPI document.
    :param around: ``(operation, run) -> Response`` around each call (``run`` answers it,
        errors included), e.g. idempotency by request id.
    """

    def __init__(
        self,
        name: str,
        import_name: str,
        url_prefix: str,
        *,
        title: str,
        area: str,
        error_body: Callable[[int, list[dict]], dict] = detail_body,
        error_status: Callable[[int], int] = lambda status: status,
        envelope: Callable[..., Response] | None = None,
        token_kind: TokenKind | None = None,
        error_schema: type[BaseModel] | None = None,
        around: Callable[[Operation, Callable[[], Response]], Response] | None = None,
    ):
        self.blueprint = Blueprint(name, import_name, url_prefix=url_prefix)
        self.url_prefix = url_prefix
        self.title = title
        self.area = area  # token scope area, e.g. "billing" -> "billing:read"
        self.error_body = error_body
        self.error_status = error_status
        self.envelope = envelope or default_envelope
        self.token_kind = token_kind or (TokenKind.ADMIN if area == "admin" else TokenKind.TENANT)
        self.error_schema = error_schema
        #: Wraps every authenticated call, e.g. to replay idempotent requests.
        self.around = around
        self.operations: list[Operation] = []
        csrf.exempt(self.blueprint)
        self.blueprint.register_error_handler(ApiError, self._api_error)
        self.blueprint.register_error_handler(HTTPException, self._http_error)
        SURFACES.append(self)

    # Errors raised inside this surface's views keep the surface's shape.
    def _api_error(self, exc: ApiError):
        db.session.rollback()
        return error_response(exc.status, exc.detail, exc.headers, api=self)

    def _http_error(self, exc: HTTPException):
        db.session.rollback()
        return http_error_response(exc, api=self)

    def operation(
        self,
        method: str,
        path: str,
        summary: str,
        **options: Any,
    ) -> Callable[[Callable], Callable]:
        """Declare and register an operation; the view receives ``query=``/``body=`` models."""

        def decorator(view: Callable) -> Callable:
            op = Operation(
                method=method.upper(),
                path=path,
                summary=summary,
                view=view,
                operation_id=options.pop("operation_id", view.__name__),
                description=options.pop("description", (view.__doc__ or "").strip()),
                **options,
            )
            self.operations.append(op)

            @functools.wraps(view)
            def endpoint(**path_values: Any) -> Any:
                if op.scope is not None:
                    g.api_token = self.authenticate(op.scope)

                def run() -> Response:
                    kwargs: dict[str, Any] = dict(path_values)
                    if op.query is not None:
                        kwargs["query"] = parse_query(op.query)
                    if op.body is not None:
                        kwargs["body"] = parse_body(op.body)
                    try:
                        result = view(**kwargs)
                    except ApiError as exc:
                        db.session.rollback()
                        return error_response(exc.status, exc.detail, exc.headers, api=self)
                    if isinstance(result, Response):
                        return result
                    return self.envelope(result, op.status)

                return self.around(op, run) if self.around else run()

            # What the route-wide guard test (tests/web/test_isolation.py) looks for.
            endpoint.required_scope = op.scope  # type: ignore[attr-defined]
            self.blueprint.add_url_rule(
                path, endpoint=view.__name__, view_func=endpoint, methods=[op.method]
            )
            return endpoint

        return decorator

    def authenticate(self, scope: str) -> ApiToken:
        """The bearer token of the request, checked for this surface and ``scope``.

        :raise ApiError: 401 without a usable token, 403 when it lacks the scope.
        """
        header = request.headers.get("Authorization", "")
        scheme, _, plaintext = header.partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="api"'}
        if scheme.lower() != "bearer" or not plaintext.strip():
            raise ApiError(
                401,
                [
                    error_entry(
                        ["header", "authorization"],
                        "Send an API token as 'Authorization: Bearer <token>'.",
                        "missing_token",
                    )
                ],
                challenge,
            )
        token = authenticate_token(db.session, plaintext.strip(), self.token_kind)
        if token is None:
            raise ApiError(
                401,
                [
                    error_entry(
                        ["header", "authorization"],
                        "The API token is unknown, expired or revoked.",
                        "invalid_token",
                    )
                ],
                challenge,
            )
        needed = f"{self.area}:{scope}"
        if needed not in token.scopes:
            raise ApiError(
                403,
                [
                    error_entry(
                        ["header", "authorization"],
                        f"This token lacks the '{needed}' scope.",
                        "insufficient_scope",
                    )
                ],
            )
        if token in db.session.dirty:
            db.session.commit()  # keep the token's last use even when the operation fails
        return token


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string as ``model``; a repeated single-valued parameter is an error."""
    values: dict[str, Any] = {}
    for name in request.args:
        items = request.args.getlist(name)
        values[name] = items if len(items) > 1 else items[0]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ApiError(422, pydantic_detail(exc, "query")) from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body as ``model``; a body that is not JSON is a 422 like any invalid one."""
    if not request.mimetype or request.mimetype != "application/json":
        raise ApiError(
            422,
            [
                error_entry(
                    ["body"],
                    "Send the body as JSON (Content-Type: application/json).",
                    "content_type",
                )
            ],
        )
    payload = request.get_json(silent=True)
    if payload is None:
        raise ApiError(422, [error_entry(["body"], "The body is not valid JSON.", "json_invalid")])
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ApiError(422, pydantic_detail(exc, "body")) from None


_HTTP_MESSAGES = {
    400: "The request could not be understood.",
    401: "Authentication is required.",
    403: "This token may not do that.",
    404: "Nothing is here.",
    405: "This path does not accept that method.",
    413: "The request is too large.",
    429: "Too many requests; slow down and retry later.",
}


def http_error_response(exc: HTTPException, api: Api | None = None):
    """A werkzeug HTTP error (404, 405, 429…) in the surface's error shape."""
    status = exc.code or 500
    message = _HTTP_MESSAGES.get(status, exc.description or "Request failed.")
    headers = {}
    if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    response = error_response(
        status,
        [error_entry([], message, exc.name.lower().replace(" ", "_"))],
        headers,
        api=api,
    )
    if status == 429 and exc.response is not None:
        retry = exc.response.headers.get("Retry-After")
        if retry:
            response.headers["Retry-After"] = retry
    return response


def is_api_request() -> bool:
    """Whether the current request is for a JSON surface (its errors answer in JSON)."""
    return request.path.startswith("/api/")


def server_error_response():
    """A 500 in the surface's shape, logged with the request id as correlation id."""
    current_app.logger.exception(
        "unhandled API error on %s %s (request id %s)", request.method, request.path, request_id()
    )
    return error_response(
        500,
        [
            error_entry(
                [],
                f"Something went wrong on our side (correlation id {request_id()}).",
                "server_error",
            )
        ],
    )
