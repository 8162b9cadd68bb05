"""The machinery every JSON surface shares: declared operations, envelopes, errors, tokens.

An operation is declared once with :meth:`Api.operation`: its path, the pydantic models of
its query, body and response, and the scope its token needs. The same declaration validates
the request, wraps the answer in the surface's envelope and becomes the OpenAPI document
(:mod:`portal.api.openapi`), so the document cannot drift from what the code accepts.

Operations only call services and queries: they never commit or roll back (the app's unit
of work commits an answer below 400 and rolls back any other), and the exceptions services
raise become the surface's error answer through the map the surface declares
(``Api(errors=...)``, completed per operation with ``raises=``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, send_file
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from portal.extensions import csrf, db, limiter
from portal.tenancy.models import ApiToken, TokenKind
from portal.tenancy.services import authenticate_token

#: Version of the API surfaces, reported in every ``meta``.
API_VERSION = "v1"
#: Request ids clients may send; anything else is replaced by a fresh one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
#: How deeply a JSON body may nest objects and arrays unless ``JSON_MAX_DEPTH`` says.
DEFAULT_JSON_MAX_DEPTH = 64
#: Characters no text column stores: NUL (PostgreSQL refuses it) and lone surrogates
#: (not Unicode scalar values, so they cannot be encoded as UTF-8).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


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


def jsonable(data: Any) -> Any:
    """``data`` with pydantic models (also inside a list) dumped to JSON-safe values."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [jsonable(item) for item in data]
    return data


def default_envelope(data: Any, status: int = 200, **top: Any) -> Response:
    """``{data, meta}`` (plus e.g. ``pagination``) as a JSON response."""
    response = jsonify({"data": jsonable(data), **top, "meta": meta()})
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


def file_response(content: bytes, media_type: str, filename: str) -> Response:
    """A download of ``content`` as an attachment named ``filename``, never cached."""
    response = send_file(
        io.BytesIO(content),
        mimetype=media_type,
        as_attachment=True,
        download_name=filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def pydantic_detail(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    """Pydantic's errors as ``detail`` entries located in ``where`` (query, body, path)."""
    entries = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        entries.append(error_entry([where, *err["loc"]], err["msg"], err["type"]))
    return entries


# --- Operations ----------------------------------------------------------------------------

#: How a surface answers an exception a service raises: the exception -> the ApiError sent.
ErrorAnswer = Callable[[Any], ApiError]
#: Exception classes -> their answer; a subclass without an entry takes its base's.
ErrorMap = Mapping[type[BaseException], ErrorAnswer]


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
    #: This operation's own answers to service exceptions, over the surface's ``errors``
    #: (e.g. where the error is located in this operation's input).
    raises: ErrorMap = field(default_factory=dict)


#: Every JSON surface, so errors outside a view (unknown path, 405) keep its shape.
SURFACES: list[Api] = []


def token_rate_key() -> str:
    """Rate-limit bucket: the bearer token sent (hashed), else the client address.

    Limits are checked before the view authenticates, so the header itself is the key.
    """
    header = request.headers.get("Authorization", "")
    if header:
        return "token:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    return "ip:" + (request.remote_addr or "")


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
    :param rate_limit: limit every route of the surface to ``API_RATE_LIMIT`` per API token
        (per client address without one), one budget for the whole surface; over it, a 429
        in the surface's error shape with ``Retry-After``. On unless a surface says otherwise.
    :param errors: the surface's answers to the exceptions its services raise (exception
        class -> ``exc -> ApiError``); an operation's ``raises=`` completes or overrides it.
        An exception in neither map is a server error.
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
        rate_limit: bool = True,
        errors: ErrorMap | None = None,
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
        self.errors: dict[type[BaseException], ErrorAnswer] = dict(errors or {})
        self.rate_limit = rate_limit
        if rate_limit:
            limiter.shared_limit(
                lambda: current_app.config["API_RATE_LIMIT"],
                scope=f"api:{name}",
                key_func=token_rate_key,
            )(self.blueprint)
        csrf.exempt(self.blueprint)
        self.blueprint.register_error_handler(ApiError, self._api_error)
        self.blueprint.register_error_handler(HTTPException, self._http_error)
        SURFACES.append(self)

    # Errors raised inside this surface's views keep the surface's shape. Nothing to roll
    # back here: the app's unit of work rolls back every error answer.
    def _api_error(self, exc: ApiError):
        return error_response(exc.status, exc.detail, exc.headers, api=self)

    def _http_error(self, exc: HTTPException):
        return http_error_response(exc, api=self)

    def answer_for(self, op: Operation, exc: BaseException) -> ApiError | None:
        """The ApiError answering ``exc`` in ``op``, or None when neither map names it.

        The exception's classes are tried from the most specific; at each, the operation's
        entry before the surface's.
        """
        for cls in type(exc).__mro__:
            answer = op.raises.get(cls) or self.errors.get(cls)
            if answer is not None:
                return answer(exc)
        return None

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
                        return error_response(exc.status, exc.detail, exc.headers, api=self)
                    except Exception as exc:
                        error = self.answer_for(op, exc)
                        if error is None:
                            raise
                        return error_response(error.status, error.detail, error.headers, api=self)
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


def unstorable_text(text: str) -> tuple[str, str] | None:
    """``(message, type)`` when ``text`` holds a character no text column can store."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "Text must not contain NUL characters (U+0000).", "text_nul"
    return (
        "Text must not contain lone surrogates (U+D800 to U+DFFF); send valid Unicode.",
        "text_surrogate",
    )


def _printable(key: str) -> str:
    """A key for an error location, with its unstorable characters escaped."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def json_problems(value: Any, *, max_depth: int, limit: int = 20) -> list[dict[str, Any]]:
    """Why parsed JSON cannot be taken, as ``detail`` entries located inside ``value``.

    Objects and arrays nested deeper than ``max_depth``, strings (values and keys) with a
    NUL or a lone surrogate, and numbers that are not finite (``NaN``, ``1e999``). Walks
    iteratively, so no depth makes it recurse; stops after ``limit`` problems.
    """
    problems: list[dict[str, Any]] = []
    stack: list[tuple[Any, tuple, int]] = [(value, (), 1)]
    while stack and len(problems) < limit:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if bad := unstorable_text(item):
                problems.append(error_entry(list(path), *bad))
        elif isinstance(item, float):
            if not math.isfinite(item):
                problems.append(
                    error_entry(list(path), "Numbers must be finite.", "number_not_finite")
                )
        elif isinstance(item, dict | list):
            if depth > max_depth:
                message = f"The JSON nests too deeply (at most {max_depth} levels)."
                return [error_entry(list(path), message, "json_too_deep")]
            children = []
            if isinstance(item, dict):
                for key, child in item.items():
                    shown = _printable(key)
                    if bad := unstorable_text(key):
                        problems.append(error_entry([*path, shown], *bad))
                    children.append(((*path, shown), child))
            else:
                children = [((*path, index), child) for index, child in enumerate(item)]
            stack.extend((child, where, depth + 1) for where, child in reversed(children))
    return problems[:limit]


def _parse_json(data: bytes | str, max_depth: int) -> Any:
    """``json.loads`` with its failures (including a stack overflow) as a 422."""
    try:
        text = data.decode(json.detect_encoding(data)) if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ApiError(
            422, [error_entry([], "The body is not valid UTF-8.", "json_invalid")]
        ) from None
    try:
        return json.loads(text)
    except RecursionError:  # deeper than the interpreter's stack, far past max_depth
        message = f"The JSON nests too deeply (at most {max_depth} levels)."
        raise ApiError(422, [error_entry([], message, "json_too_deep")]) from None
    except ValueError:
        raise ApiError(
            422, [error_entry([], "The body is not valid JSON.", "json_invalid")]
        ) from None


def load_json(data: bytes | str, *, max_depth: int) -> Any:
    """Parse a JSON document that is safe to validate and store.

    :raise ApiError: 422 with entries located in the document (``loc`` without a prefix)
        for text that is not JSON (or not UTF-8/16/32), nesting deeper than ``max_depth``,
        unstorable text and non-finite numbers.
    """
    value = _parse_json(data, max_depth)
    if problems := json_problems(value, max_depth=max_depth):
        raise ApiError(422, problems)
    return value


def json_max_depth() -> int:
    """``JSON_MAX_DEPTH`` of the app (levels of objects and arrays a JSON body may nest)."""
    return int(current_app.config.get("JSON_MAX_DEPTH") or DEFAULT_JSON_MAX_DEPTH)


def read_body() -> bytes:
    """The raw request body, never more than ``request.max_content_length`` bytes of it.

    Werkzeug refuses a longer Content-Length before reading. A body without one (chunked)
    it would cut at the limit without a word, so one byte more is read: a longer body is
    a 413 as well, never a truncated one.

    :raise RequestEntityTooLarge: for a body over the limit.
    """
    limit = request.max_content_length
    if limit is not None and request.content_length is None:
        request.max_content_length = limit + 1
    data = request.get_data(cache=True)
    if limit is not None and len(data) > limit:
        raise RequestEntityTooLarge()
    return data


def request_json(
    mimetypes: tuple[str, ...] = ("application/json",),
    locate: Callable[[Any, list], list] | None = None,
) -> Any:
    """The request's JSON body, read within ``MAX_CONTENT_LENGTH`` (413 beyond it).

    :param mimetypes: the content types accepted.
    :param locate: ``(document, loc) -> loc`` naming the field of a problem found inside
        the parsed document (e.g. the setting a JSON Patch operation changes); by default
        the JSON path itself.
    :raise ApiError: 422 for another content type or a body :func:`load_json` refuses,
        located under ``body``.
    """
    if request.mimetype not in mimetypes:
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
    max_depth = json_max_depth()
    try:
        value = _parse_json(read_body(), max_depth)
    except ApiError as exc:
        raise ApiError(422, [{**e, "loc": ["body", *e["loc"]]} for e in exc.detail]) from None
    if problems := json_problems(value, max_depth=max_depth):
        for entry in problems:
            inner = locate(value, entry["loc"]) if locate else entry["loc"]
            entry["loc"] = ["body", *inner]
        raise ApiError(422, problems)
    return value


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string as ``model``; a repeated single-valued parameter is an error, and so
    is a NUL character (the only unstorable one a query string can carry)."""
    values: dict[str, Any] = {}
    problems = []
    for name in request.args:
        items = request.args.getlist(name)
        for text in (name, *items):
            if bad := unstorable_text(text):
                problems.append(error_entry(["query", _printable(name)], *bad))
                break
        values[name] = items if len(items) > 1 else items[0]
    if problems:
        raise ApiError(422, problems)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ApiError(422, pydantic_detail(exc, "query")) from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body as ``model``; a body that is not JSON is a 422 like any invalid one."""
    payload = request_json()
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
