"""The provider console's collection query language: filter, sort and select.

Each is a JSON array in the query string (``?filter=[...]&sort=[...]&select=[...]``):

- FilterParameter: ``{"property": "/status", "operation": "equals", "value": "Paid"}``;
  ``"and"``, ``"or"`` and ``"not"`` take ``"items"``. Comparisons: equals, notEquals,
  lessThan, lessThanOrEqual, greaterThan, greaterThanOrEqual, contains, in.
- SortParameter: ``{"property": "/issueDate", "direction": "descending"}``.
- SelectParameter: ``{"propertyPath": "/totals/amountDueMinor"}`` (nested paths allowed).

A collection declares which of its JSON pointers map to SQL expressions (:class:`Field`).
From that one declaration come the pydantic models that validate the three parameters and
that the OpenAPI document shows (:class:`QueryLanguage`), and the SQL: filtering, sorting and
paging happen in the database; select shapes each returned resource.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    RootModel,
    StrictBool,
    StringConstraints,
    Tag,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic import (
    Field as ModelField,
)

EQUALITY = ("equals", "notEquals")
ORDERING = ("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual")
COMPARISONS = (*EQUALITY, *ORDERING, "contains", "in")
LOGICAL = ("and", "or", "not")
#: Levels of and/or/not groups inside one another.
MAX_DEPTH = 4
#: Sizes that keep a request within the request target limit of the views (4000 bytes):
#: items of a filter array or group, values of one ``in``, sort and select items,
#: characters of a text value.
MAX_ITEMS = 10
MAX_IN = 20
MAX_SORT = 10
MAX_SELECT = 30
MAX_TEXT = 100
#: Whole numbers accepted in filters (within a signed 64-bit column's range).
MAX_INTEGER = 2**62


class QueryError(ValueError):
    """A filter, sort or select the surface cannot apply.

    :param param: the query parameter (filter, sort, select).
    :param entries: ``(location inside the parameter, message, type)`` per problem.
    """

    def __init__(self, param: str, entries: list[tuple[list[str | int], str, str]]):
        super().__init__(entries[0][1] if entries else param)
        self.param = param
        self.entries = entries


@dataclass(frozen=True)
class Field:
    """A filterable and sortable property: its SQL expression and the kind of its values."""

    column: Any  # a SQLAlchemy column expression
    kind: str  # "string", "integer", "decimal", "date", "datetime", "boolean", "enum", "uuid"
    #: For enums: API value -> stored value.
    choices: Mapping[str, Any] | None = None


# --- value types ---------------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: What PostgreSQL text cannot hold.
NO_NUL = r"^[^\x00]*$"


def parse_date(text: str) -> dt.date:
    """An RFC 3339 full-date (``2026-01-31``), nothing looser."""
    if not _DATE.fullmatch(text):
        raise ValueError("Enter a date as YYYY-MM-DD.")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("Enter a date that exists, as YYYY-MM-DD.") from None


def parse_datetime(text: str) -> dt.datetime:
    """An RFC 3339 date-time with its offset, in UTC (clamped to the representable range)."""
    match = _DATETIME.fullmatch(text)
    if not match:
        raise ValueError("Enter a date-time as RFC 3339, e.g. 2026-01-31T12:00:00Z.")
    day, hour, minute, second, fraction, offset = match.groups()
    try:
        micros = int((fraction or ".0")[1:7].ljust(6, "0"))
        # A leap second (:60) is the last microsecond-exact second before it.
        clock = dt.time(int(hour), int(minute), min(int(second), 59), micros)
        moment = dt.datetime.combine(dt.date.fromisoformat(day), clock)
        if offset in ("Z", "z"):
            zone = dt.UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            zone = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:])))
        moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise ValueError("Enter a date-time that exists, as RFC 3339.") from None
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:  # an offset moves it outside years 1-9999: before or after any row
        return (dt.datetime.min if moment.year == 1 else dt.datetime.max).replace(tzinfo=dt.UTC)


def _parse_uuid(text: str) -> uuid.UUID:
    if not _UUID.fullmatch(text):
        raise ValueError("Enter a UUID like ba547d14-c556-42bb-b85c-eeeb16e2f5e7.")
    return uuid.UUID(text)


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=NO_NUL)]


def _whole(value: Any) -> Any:
    """JSON Schema counts 5.0 as an integer, so a whole float is one; others stay floats."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def json_int(low: int, high: int) -> Any:
    """An integer of JSON in [low, high]: ``5`` or ``5.0``, never ``"5"`` or ``true`` (the
    models are strict)."""
    return Annotated[int, ModelField(ge=low, le=high), BeforeValidator(_whole)]


Integer = json_int(-MAX_INTEGER, MAX_INTEGER)
DecimalText = Annotated[
    str,
    StringConstraints(pattern=r"^-?[0-9]{1,10}(\.[0-9]{1,4})?$"),
    AfterValidator(Decimal),
]
DecimalValue = json_int(-(10**10), 10**10) | DecimalText
DateValue = Annotated[
    str, AfterValidator(parse_date), WithJsonSchema({"type": "string", "format": "date"})
]
DateTimeValue = Annotated[
    str,
    AfterValidator(parse_datetime),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
UuidValue = Annotated[
    str,
    AfterValidator(_parse_uuid),
    WithJsonSchema({"type": "string", "format": "uuid", "pattern": f"^{_UUID.pattern}$"}),
]

_KIND_NAMES = {
    "string": "Text",
    "integer": "Integer",
    "decimal": "Decimal",
    "date": "Date",
    "datetime": "DateTime",
    "boolean": "Boolean",
    "enum": "Enum",
    "uuid": "Uuid",
}
_KIND_LABELS = {
    "string": "text",
    "integer": "whole number",
    "decimal": "decimal string (or whole number)",
    "date": "date",
    "datetime": "RFC 3339 date-time",
    "boolean": "true or false",
    "enum": "one of the listed values",
    "uuid": "UUID",
}


def _value_type(field: Field) -> Any:
    if field.kind == "enum":
        return Literal[tuple(field.choices or ())]
    return {
        "string": Text,
        "integer": Integer,
        "decimal": DecimalValue,
        "date": DateValue,
        "datetime": DateTimeValue,
        "boolean": StrictBool,
        "uuid": UuidValue,
    }[field.kind]


def _operations(kind: str) -> dict[str, tuple[str, ...]]:
    """Operation classes a kind supports, each with its operations."""
    classes: dict[str, tuple[str, ...]] = {"Equality": EQUALITY}
    if kind not in ("boolean", "enum"):
        classes["Ordering"] = ORDERING
    if kind == "string":
        classes["Contains"] = ("contains",)
    classes["In"] = ("in",)
    return classes


_STRICT = ConfigDict(strict=True, extra="forbid")


def _pointers(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every JSON pointer of ``model``'s properties, nested models included."""
    pointers = []
    for name, info in model.model_fields.items():
        pointer = f"{prefix}/{name}"
        pointers.append(pointer)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            pointers.extend(_pointers(annotation, pointer))
    return pointers


class QueryLanguage:
    """The filter, sort and select models of one collection (and its select-only reads).

    :param prefix: names the models in the OpenAPI document, e.g. ``Invoice``.
    :param fields: JSON pointer -> :class:`Field` of the filterable and sortable properties.
    :param resource: the resource model; select accepts each of its JSON pointers.
    """

    def __init__(self, prefix: str, fields: Mapping[str, Field], resource: type[BaseModel]):
        self.prefix = prefix
        self.fields = dict(fields)
        self._kinds = {pointer: field.kind for pointer, field in self.fields.items()}
        comparisons = []
        for kind in _KIND_NAMES:
            properties = tuple(p for p, k in self._kinds.items() if k == kind)
            if not properties:
                continue
            sample = next(f for f in self.fields.values() if f.kind == kind)
            value = _value_type(sample)
            for cls, operations in _operations(kind).items():
                if cls == "Equality":
                    value_type: Any = (value | None, ...)
                elif cls == "In":
                    value_type = (
                        list[value | None],
                        ModelField(..., min_length=1, max_length=MAX_IN),
                    )
                elif cls == "Contains":
                    value_type = (Text, ...)
                else:
                    value_type = (value, ...)
                model = create_model(
                    f"{prefix}{_KIND_NAMES[kind]}{cls}Filter",
                    __config__=_STRICT,
                    __doc__=(
                        f"Compares a {_KIND_LABELS[kind]} property"
                        + (" (null only with equals and notEquals)." if cls == "Equality" else ".")
                    ),
                    property=(Literal[properties], ...),
                    operation=(Literal[operations], ...),
                    value=value_type,
                )
                tag = f"{kind}:{cls}"
                comparisons.append(Annotated[model, Tag(tag)])
        message = self._tag_message()
        inner: Any = None
        for depth in range(MAX_DEPTH, -1, -1):
            choices = list(comparisons)
            if inner is not None:
                choices.append(Annotated[inner, Tag("group")])
            item = Annotated[
                Union[tuple(choices)],  # noqa: UP007
                Discriminator(
                    self._tag, custom_error_type="invalid_filter", custom_error_message=message
                ),
            ]
            if depth == 0:
                break
            inner = create_model(
                f"{prefix}FilterGroup{depth}" if depth > 1 else f"{prefix}FilterGroup",
                __config__=_STRICT,
                __doc__=f"and / or / not over 1 or more items (group level {depth} of "
                f"{MAX_DEPTH}; 'not' negates all its items together).",
                operation=(Literal[LOGICAL], ...),
                items=(
                    list[item],
                    ModelField(..., min_length=1, max_length=MAX_ITEMS),
                ),
            )
        self.filter = _root(
            f"{prefix}Filter",
            Annotated[list[item], ModelField(max_length=MAX_ITEMS)] | None,
        )

        sort_model = create_model(
            f"{prefix}SortParameter",
            __config__=_STRICT,
            property=(Literal[tuple(self.fields)], ...),
            direction=(Literal["ascending", "descending"], "ascending"),
        )
        self.sort = _root(
            f"{prefix}Sort",
            Annotated[list[sort_model], ModelField(max_length=MAX_SORT)] | None,
        )
        select_model = create_model(
            f"{prefix}SelectParameter",
            __config__=_STRICT,
            propertyPath=(Literal[tuple(_pointers(resource))], ...),
        )
        self.select = _root(
            f"{prefix}Select",
            Annotated[list[select_model], ModelField(max_length=MAX_SELECT)] | None,
        )

    def _tag(self, item: Any) -> str | None:
        """Which model a filter item is: a group, or a comparison of its property's kind."""
        if isinstance(item, BaseModel):
            item = item.__dict__
        if not isinstance(item, dict):
            return None
        operation = item.get("operation")
        if not isinstance(operation, str):
            return None
        if operation in LOGICAL:
            return "group"
        prop = item.get("property")
        kind = self._kinds.get(prop) if isinstance(prop, str) else None
        if kind is None:
            return None
        for cls, operations in _operations(kind).items():
            if operation in operations:
                return f"{kind}:{cls}"
        return None

    def _tag_message(self) -> str:
        parts = []
        for kind in _KIND_NAMES:
            properties = [p for p, k in self._kinds.items() if k == kind]
            if properties:
                operations = [op for ops in _operations(kind).values() for op in ops]
                parts.append(f"{', '.join(properties)} ({', '.join(operations)})")
        return (
            "Each filter item is a comparison of a filterable property with an operation it "
            "supports, or and/or/not with items: " + "; ".join(parts) + "."
        )

    # --- parsing -------------------------------------------------------------------------

    def parse(self, model: type[RootModel], raw: str | None, param: str) -> list:
        """The validated items of ``?param=`` (a JSON array; absent, empty or null: none)."""
        if raw is None or not raw.strip():
            return []
        try:
            value = model.model_validate_json(raw, strict=True).root
        except ValidationError as exc:
            entries = []
            for err in exc.errors(include_url=False, include_context=False, include_input=False):
                entries.append((clean_location(err["loc"]), err["msg"], err["type"]))
            raise QueryError(param, entries) from None
        return value or []

    def condition(self, raw: str | None) -> sa.ColumnElement[bool] | None:
        """The SQL condition of ``?filter=`` (its items are and-ed)."""
        items = self.parse(self.filter, raw, "filter")
        conditions = [self._condition(item) for item in items]
        return sa.and_(*conditions) if conditions else None

    def order(self, raw: str | None) -> list[sa.ColumnElement]:
        """ORDER BY terms of ``?sort=``, in the order given."""
        terms = []
        for item in self.parse(self.sort, raw, "sort"):
            column = self.fields[item.property].column
            ordered = column.desc() if item.direction == "descending" else column.asc()
            terms.append(ordered.nulls_last())
        return terms

    def paths(self, raw: str | None) -> list[list[str]]:
        """The JSON pointers of ``?select=``, split into their parts."""
        return [pointer_parts(item.propertyPath) for item in self.parse(self.select, raw, "select")]

    def _condition(self, item: BaseModel) -> sa.ColumnElement[bool]:
        operation = item.operation  # type: ignore[attr-defined]
        if operation in LOGICAL:
            parts = [self._condition(child) for child in item.items]  # type: ignore[attr-defined]
            if operation == "not":
                return sa.not_(sa.and_(*parts))
            return sa.and_(*parts) if operation == "and" else sa.or_(*parts)
        field = self.fields[item.property]  # type: ignore[attr-defined]
        column = field.column
        raw = item.value  # type: ignore[attr-defined]
        if operation == "in":
            return column.in_([_stored(field, value) for value in raw])
        value = _stored(field, raw)
        if operation == "contains":
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return sa.func.lower(column).like(f"%{escaped.lower()}%", escape="\\")
        if value is None:
            return column.is_(None) if operation == "equals" else column.is_not(None)
        if operation == "equals":
            return column == value
        if operation == "notEquals":
            return sa.or_(column != value, column.is_(None))
        compare = {
            "lessThan": operator.lt,
            "lessThanOrEqual": operator.le,
            "greaterThan": operator.gt,
            "greaterThanOrEqual": operator.ge,
        }[operation]
        return compare(column, value)


#: Member names of the query language's and the JSON Patch's objects.
_MEMBERS = frozenset(
    {"property", "operation", "value", "items", "direction", "propertyPath", "op", "path", "from"}
)


def clean_location(loc: tuple) -> list[str | int]:
    """A pydantic error location with the union members it went through left out, so it
    names only indexes and members of the JSON (``0/items/1/value``)."""
    return [part for part in loc if isinstance(part, int) or part in _MEMBERS]


def _stored(field: Field, value: Any) -> Any:
    """A validated filter value as the column stores it."""
    if value is None:
        return None
    if field.kind == "enum":
        return field.choices[value]  # type: ignore[index]
    if field.kind == "decimal":
        return Decimal(value)
    return value


def _root(name: str, annotation: Any) -> type[RootModel]:
    """A named root model (so the OpenAPI document shows it under ``name``)."""
    return type(name, (RootModel[annotation],), {"__module__": __name__})


# --- select --------------------------------------------------------------------------------


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
                pointer = "/" + "/".join(parts)
                raise QueryError("select", [([], f"Unknown property {pointer}.", "invalid_query")])
            source = source[part]
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        if isinstance(source, dict):
            source = {**target.get(parts[-1], {}), **source}
        target[parts[-1]] = source
    return result
