"""OpenAPI 3.1 documents built from the declared operations and their pydantic models.

The models that validate requests and shape responses are the ones described, so the
document is generated, never written by hand. Each surface serves its document as
``<prefix>/openapi.json`` and a readable page at ``<prefix>/docs`` (no CDN, no JavaScript).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Response, render_template, request
from pydantic.json_schema import models_json_schema

from portal.api.billing.schemas import HTTPValidationError
from portal.api.core import Api, Operation
from portal.tenancy.models import TokenKind

_PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
_REF = "#/components/schemas/{model}"

_ERROR_TEXT = {
    401: "Missing, unknown, expired or revoked API token.",
    403: "The token lacks the scope this operation needs.",
    404: "Not found, or not the token's tenant.",
    422: "Validation Error",
    429: "Rate limit exceeded; retry after the Retry-After seconds.",
    502: "The payment provider could not be reached; retry later.",
}


@dataclass
class DocExtras:
    """What a surface adds to its generated document beyond the declared operations.

    :param description: ``info.description`` instead of the tenant surface's text.
    :param headers: request header parameters of every operation (instead of the tenant
        surface's ``X-Request-Id``).
    :param path_params: path parameter name -> ``(schema, description)``.
    :param errors: status -> description of errors every operation can answer (e.g. a
        malformed header, an over-long URL); they also describe those statuses elsewhere.
    :param response_headers: headers of every response, by name (OpenAPI header objects).
    :param status_headers: status -> headers of that answer (e.g. ``Retry-After`` on 429).
    :param bodies: operation id -> the model of a body its view reads itself (e.g. with
        more than one media type, listed in the model's ``media_types``).
    :param customize: ``(operation, entry)`` may complete an operation's entry in place
        (after the headers above are in).
    """

    description: str | None = None
    headers: list[dict[str, Any]] | None = None
    path_params: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    response_headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    status_headers: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    bodies: dict[str, type] = field(default_factory=dict)
    customize: Callable[[Operation, dict[str, Any]], None] | None = None


#: Extras by blueprint name (register_docs); a surface without any gets none.
_EXTRAS: dict[str, DocExtras] = {}


def json_params(model: type | None) -> dict[str, Any]:
    """Query parameters of ``model`` whose value is JSON: name -> the model of that JSON.

    A query model lists them in a ``json_params`` class variable; the document describes
    them with ``content: application/json`` and the model's schema.
    """
    return dict(getattr(model, "json_params", None) or {})


def openapi_path(rule: str) -> str:
    return _PATH_PARAM.sub(r"{\1}", rule)


def _error_response(status: int, error_ref: dict[str, Any], extras: DocExtras) -> dict[str, Any]:
    return {
        "description": extras.errors.get(status) or _ERROR_TEXT.get(status, "Error"),
        "content": {"application/json": {"schema": error_ref}},
    }


def build_spec(api: Api, server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``api``."""
    error_model = api.error_schema or HTTPValidationError
    extras = _EXTRAS.get(api.blueprint.name) or DocExtras()
    inputs: list[tuple[Any, Literal["validation", "serialization"]]] = [
        (error_model, "serialization")
    ]
    for op in api.operations:
        body = op.body or extras.bodies.get(op.operation_id)
        if body is not None:
            inputs.append((body, "validation"))
        if op.response is not None:
            inputs.append((op.response, "serialization"))
        for model in json_params(op.query).values():
            inputs.append((model, "validation"))
    keys, schema = models_json_schema(list(dict.fromkeys(inputs)), ref_template=_REF)
    components = schema.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for op in api.operations:
        path = api.url_prefix + openapi_path(op.path)
        entry = _operation(op, keys, keys[(error_model, "serialization")], api, extras)
        paths.setdefault(path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": api.title,
            "version": "1.0.0",
            "description": extras.description
            or (
                "Every answer is `{data, meta}` (lists: `{data, pagination, meta}`); errors are "
                "`{detail: [{loc, msg, type}]}`. Amounts are integers in the currency's minor "
                "unit (`*_minor`, e.g. cents; yen have none); quantities, prices and rates are "
                "decimal strings. Send `X-Request-Id` to have it echoed in `meta`."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "A tenant API token (tbp_…) from Settings → API tokens."
                        if api.token_kind == TokenKind.TENANT
                        else "An admin API token (tbp_…) from `flask create-token --admin`."
                    ),
                }
            },
        },
    }


def _operation(
    op: Operation, keys: dict, error_ref: dict, api: Api, extras: DocExtras
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "tags": op.tags,
        "parameters": _parameters(op, keys, extras),
        "responses": {},
    }
    if op.scope is None:
        entry["security"] = []
    else:
        entry["security"] = [{"bearerAuth": []}]
        entry["x-required-scope"] = f"{api.area}:{op.scope}"
    body = op.body or extras.bodies.get(op.operation_id)
    if body is not None:
        body_schema = keys[(body, "validation")]
        media_types = getattr(body, "media_types", None) or ("application/json",)
        entry["requestBody"] = {
            "required": True,
            "content": {media: {"schema": body_schema} for media in media_types},
        }
    responses = entry["responses"]
    if op.files:
        responses[str(op.status)] = {
            "description": "The document.",
            "content": {
                media: {"schema": {"type": "string", "contentMediaType": media}}
                for media in op.files
            },
        }
    else:
        responses[str(op.status)] = {
            "description": "Successful Response",
            "content": {"application/json": {"schema": keys[(op.response, "serialization")]}},
        }
    if op.redirects:
        responses["302"] = {"description": "Redirect to the pre-generated document."}
    statuses = set(op.errors) | set(extras.errors)
    if op.scope is not None:
        statuses |= {401, 403}
    if op.scope is not None or getattr(api, "rate_limit", False):
        statuses.add(429)
    if op.query or body or op.scope is not None or op.path_params or "<" in op.path:
        statuses.add(422)
    for status in sorted(statuses):
        sent = api.error_status(status)
        if str(sent) not in responses or status in extras.errors:
            responses[str(sent)] = _error_response(status, error_ref, extras)
    for status, response in responses.items():
        headers = {**extras.response_headers, **extras.status_headers.get(int(status), {})}
        if headers:
            response["headers"] = {**headers, **response.get("headers", {})}
    if extras.customize is not None:
        extras.customize(op, entry)
    return entry


def _parameters(op: Operation, keys: dict, extras: DocExtras) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in _PATH_PARAM.findall(op.path):
        schema, description = extras.path_params.get(name, ({"type": "string"}, ""))
        param = {"name": name, "in": "path", "required": True, "schema": schema}
        if description:
            param["description"] = description
        params.append(param)
    if op.query is not None:
        schema = op.query.model_json_schema(ref_template=_REF)
        required = set(schema.get("required", []))
        as_json = json_params(op.query)
        for name, prop in schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required}
            if name in as_json:
                media: dict[str, Any] = {"schema": keys[(as_json[name], "validation")]}
                if prop.get("examples"):
                    media["examples"] = {
                        f"example{number}": {"value": value}
                        for number, value in enumerate(prop["examples"], 1)
                    }
                param["content"] = {"application/json": media}
            else:
                param["schema"] = prop
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if extras.headers is not None:
        params.extend(copy.deepcopy(extras.headers))
        return params
    params.append(
        {
            "name": "X-Request-Id",
            "in": "header",
            "required": False,
            "description": "Echoed in meta.request_id (1-100 of A-Z a-z 0-9 . _ : -).",
            "schema": {"type": "string"},
        }
    )
    return params


def register_docs(api: Api, extras: DocExtras | None = None) -> None:
    """Serve ``openapi.json`` and the docs page of ``api`` on its blueprint."""
    if extras is not None:
        _EXTRAS[api.blueprint.name] = extras

    def spec_json() -> Response:
        spec = build_spec(api, server_url=request.host_url.rstrip("/"))
        return Response(json.dumps(spec, indent=2), mimetype="application/json")

    def docs_page() -> str:
        spec = build_spec(api, server_url=request.host_url.rstrip("/"))
        return render_template("api/docs.html", spec=spec, api=api, operations=_readable(spec))

    api.blueprint.add_url_rule("/openapi.json", "openapi", spec_json, methods=["GET"])
    api.blueprint.add_url_rule("/docs", "docs", docs_page, methods=["GET"])


def _readable(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Operations in path order with their schemas resolved one level, for the docs page."""
    schemas = spec["components"]["schemas"]
    rows = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = None
            if "requestBody" in op:
                # The first media type's schema: JSON, or the image of an upload.
                ref = next(iter(op["requestBody"]["content"].values()))["schema"]
                body = _resolve(ref, schemas)
            success = [
                (status, r) for status, r in op["responses"].items() if status.startswith("2")
            ][0]
            # A parameter given as JSON content shows the schema of that content.
            parameters = [
                param if "schema" in param else {**param, "schema": _content_schema(param)}
                for param in op["parameters"]
            ]
            rows.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "anchor": op["operationId"],
                    "op": {**op, "parameters": parameters},
                    "body": body,
                    "success_status": success[0],
                    "success": success[1],
                    "errors": [s for s in op["responses"] if s[0] in "345"],
                }
            )
    return rows


def _content_schema(param: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = param.get("content", {})
    first: dict[str, Any] = next(iter(content.values()), {})
    return first.get("schema", {})


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return {"name": name, **schemas[name]}
    return schema
