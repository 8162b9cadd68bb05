"""The provider console's collection query language: filter, sort and select.

Each is a JSON array in the query string (``?filter=[...]&sort=[...]&select=[...]``):

- FilterParameter: ``{"property": "/status", "operation": "equals", "value": "Paid"}``;
  ``"and"``, ``"or"`` and ``"not"`` take ``"items"``. Comparisons: equals, notEquals,
  lessThan, lessThanOrEqual, greaterThan, greaterThanOrEqual, contains, in.
- SortParameter: ``{"property": "/issueDate", "direction": "descending"}``.
- SelectParameter: ``{"propertyPath": "/totals/amountDueMinor"}`` (nested paths allowed).

A resource declares which of its JSON pointers map to SQL expressions, so filtering, sorting
and paging happen in the database; select shapes each returned resource.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

COMPARISONS = (
    "equals",
    "notEquals",
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
    "contains",
    "in",
)
LOGICAL = ("and", "or", "not")
#: Nesting depth of and/or/not accepted (a guard against pathological input).
MAX_DEPTH = 8
MAX_TERMS = 50


class QueryError(ValueError):
    """A filter, sort or select the surface cannot apply; ``param`` names the parameter."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True)
class Field:
    """A filterable and sortable property: its SQL expression and how to read values."""

    column: Any  # a SQLAlchemy column expression
    kind: str  # "string", "integer", "decimal", "date", "datetime", "boolean", "enum", "uuid"
    #: For enums: API value -> stored value.
    choices: Mapping[str, Any] | None = None


def parse_json_array(raw: str | None, param: str) -> list:
    """The JSON array of ``?param=``; empty when absent."""
    if raw is None or raw.strip() in ("", "null"):
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        raise QueryError(param, f"{param} must be a JSON array.") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise QueryError(param, f"{param} must be a JSON array of objects.")
    return value


# --- filter --------------------------------------------------------------------------------


def filter_condition(
    items: list[dict], fields: Mapping[str, Field]
) -> sa.ColumnElement[bool] | None:
    """The SQL condition of a filter array (its items are and-ed)."""
    counter = [0]
    conditions = [_condition(item, fields, 0, counter) for item in items]
    return sa.and_(*conditions) if conditions else None


def _condition(item: dict, fields: Mapping[str, Field], depth: int, counter: list[int]):
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_TERMS:
        raise QueryError("filter", "The filter is nested too deeply or has too many terms.")
    operation = item.get("operation")
    if operation in LOGICAL:
        children = item.get("items")
        if not isinstance(children, list) or not children:
            raise QueryError("filter", f"'{operation}' needs a non-empty 'items' array.")
        parts = []
        for child in children:
            if not isinstance(child, dict):
                raise QueryError("filter", "Filter items must be objects.")
            parts.append(_condition(child, fields, depth + 1, counter))
        if operation == "not":
            return sa.not_(sa.and_(*parts))
        return sa.and_(*parts) if operation == "and" else sa.or_(*parts)
    if operation not in COMPARISONS:
        raise QueryError(
            "filter",
            f"Unknown operation {operation!r}; use one of {', '.join(COMPARISONS + LOGICAL)}.",
        )
    prop = item.get("property")
    field = fields.get(prop) if isinstance(prop, str) else None
    if field is None:
        raise QueryError(
            "filter", f"Cannot filter by {prop!r}; filterable: {', '.join(sorted(fields))}."
        )
    if "value" not in item:
        raise QueryError("filter", f"The filter on {prop} needs a 'value'.")
    raw = item["value"]
    column = field.column
    if operation == "in":
        if not isinstance(raw, list) or not raw or len(raw) > 100:
            raise QueryError("filter", f"'in' on {prop} needs a list of 1 to 100 values.")
        return column.in_([_value(field, prop, v) for v in raw])
    if operation == "contains":
        if field.kind != "string":
            raise QueryError("filter", f"'contains' works on text properties, not {prop}.")
        text = _value(field, prop, raw)
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return sa.func.lower(column).like(f"%{escaped.lower()}%", escape="\\")
    value = _value(field, prop, raw)
    if value is None:
        if operation == "equals":
            return column.is_(None)
        if operation == "notEquals":
            return column.is_not(None)
        raise QueryError("filter", f"{operation} on {prop} needs a value, not null.")
    if field.kind in ("boolean", "enum") and operation not in ("equals", "notEquals"):
        raise QueryError("filter", f"{prop} can only be compared with equals or notEquals.")
    return {
        "equals": column == value,
        "notEquals": sa.or_(column != value, column.is_(None)),
        "lessThan": column < value,
        "lessThanOrEqual": column <= value,
        "greaterThan": column > value,
        "greaterThanOrEqual": column >= value,
    }[operation]


def _value(field: Field, prop: str, raw: Any) -> Any:
    """A filter value in the property's type; a clear error when it is not one."""
    if raw is None:
        return None
    try:
        if field.kind == "string":
            if not isinstance(raw, str | int) or isinstance(raw, bool):
                raise ValueError
            return "".join(ch for ch in str(raw) if ch.isprintable())[:200]
        if field.kind == "integer":
            if isinstance(raw, bool) or not isinstance(raw, int | str):
                raise ValueError
            number = int(raw)
            if abs(number) > 2**62:
                raise ValueError
            return number
        if field.kind == "decimal":
            if isinstance(raw, bool):
                raise ValueError
            return Decimal(str(raw))
        if field.kind == "date":
            return dt.date.fromisoformat(str(raw))
        if field.kind == "datetime":
            value = dt.datetime.fromisoformat(str(raw))
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if field.kind == "boolean":
            if not isinstance(raw, bool):
                raise ValueError
            return raw
        if field.kind == "enum":
            return field.choices[str(raw)]  # type: ignore[index]
        if field.kind == "uuid":
            return uuid.UUID(str(raw))
    except (ValueError, TypeError, KeyError, InvalidOperation):
        expected = (
            f"one of {', '.join(field.choices)}" if field.choices else f"a {field.kind} value"
        )
        raise QueryError("filter", f"{prop} must be {expected}, not {raw!r}.") from None
    raise QueryError("filter", f"{prop} cannot be filtered.")


# --- sort ----------------------------------------------------------------------------------


def sort_order(items: list[dict], fields: Mapping[str, Field]) -> list[sa.ColumnElement]:
    """ORDER BY terms of a sort array, in the order given."""
    if len(items) > 10:
        raise QueryError("sort", "At most 10 sort properties.")
    terms = []
    for item in items:
        prop = item.get("property")
        field = fields.get(prop) if isinstance(prop, str) else None
        if field is None:
            raise QueryError(
                "sort", f"Cannot sort by {prop!r}; sortable: {', '.join(sorted(fields))}."
            )
        direction = item.get("direction", "ascending")
        if direction not in ("ascending", "descending"):
            raise QueryError("sort", "direction must be 'ascending' or 'descending'.")
        column = field.column
        terms.append(
            column.desc().nulls_last() if direction == "descending" else column.asc().nulls_last()
        )
    return terms


# --- select --------------------------------------------------------------------------------


def select_paths(items: list[dict]) -> list[list[str]]:
    """The JSON pointers of a select array, split into their parts."""
    paths = []
    for item in items:
        pointer = item.get("propertyPath")
        if not isinstance(pointer, str) or not pointer.startswith("/") or len(pointer) > 200:
            raise QueryError(
                "select", "Each select item needs a propertyPath like /totals/taxMinor."
            )
        paths.append(pointer_parts(pointer))
    return paths


def pointer_parts(pointer: str) -> list[str]:
    """RFC 6901: "/a~1b/c~0d" -> ["a/b", "c~d"]."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/': {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def project(resource: dict, paths: list[list[str]]) -> dict:
    """Only the selected properties of ``resource``, nested as in the original.

    :raise QueryError: for a path the resource does not have.
    """
    if not paths:
        return resource
    result: dict = {}
    for parts in paths:
        source: Any = resource
        for part in parts:
            if not isinstance(source, dict) or part not in source:
                raise QueryError("select", f"Unknown property /{'/'.join(parts)}.")
            source = source[part]
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = source
    return result
