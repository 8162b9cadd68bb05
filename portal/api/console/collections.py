"""The provider console's collections: which property is which SQL expression, the models
of their query parameters, and reading those parameters (filter, sort, select, dates).

Each collection is one :class:`~portal.api.console.query.QueryLanguage`; the filter and
sort it reads become the ``where`` and ``order_by`` of the query functions
(:func:`portal.invoices.queries.admin_invoice_list`,
:func:`portal.catalog.queries.company_settings_list`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from portal.api.console.query import Field, QueryError, QueryLanguage
from portal.api.console.schemas import (
    CompanyBillingSettingsResource,
    InvoiceResource,
    collection_query,
    select_query,
)
from portal.api.console.serializers import SETTINGS_COLUMNS, STATUS_NAMES
from portal.api.core import ApiError, error_entry, json_max_depth, load_json
from portal.catalog.models import CompanyBillingSettings
from portal.invoices.models import Invoice
from portal.tenancy.models import Tenant


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
        "selfServiceQuantity": "boolean",
        "selfServicePriceSwitch": "boolean",
        "selfServiceCancel": "boolean",
    }
    fields = {
        "/companyUid": Field(Tenant.public_id, "uuid"),
        "/companyName": Field(Tenant.name, "string"),
    }
    for name, (column, default) in SETTINGS_COLUMNS.items():
        expression = getattr(CompanyBillingSettings, column)
        if default is not None:
            expression = sa.func.coalesce(expression, default)
        if kinds[name] == "integer":
            # Filters take 64-bit values; compared with a 32-bit column PostgreSQL would
            # refuse one beyond its range ("integer out of range") instead of not matching.
            expression = sa.cast(expression, sa.BigInteger)
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


def _invoice_fields() -> dict[str, Field]:
    return {
        "/instanceUid": Field(Invoice.public_id, "uuid"),
        "/companyUid": Field(Tenant.public_id, "uuid"),
        "/companyName": Field(Tenant.name, "string"),
        "/number": Field(Invoice.number, "string"),
        "/status": Field(
            Invoice.status, "enum", {name: status for status, name in STATUS_NAMES.items()}
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


def date_range(query) -> tuple[dt.date, dt.date]:
    """``fromDate`` and ``toDate`` of an invoice collection, checked.

    :raise ApiError: 400 when toDate is before fromDate or more than a year after it.
    """
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
    return start, end


@dataclass(frozen=True)
class Selection:
    """What filter, sort and select of a request ask for, read by a collection's language."""

    where: sa.ColumnElement[bool] | None
    order_by: list[sa.ColumnElement]
    paths: list[list[str]]


def selection(query, language: QueryLanguage) -> Selection:
    """The filter, sort and select of a collection request.

    :raise QueryError: for a filter, sort or select the language cannot apply.
    """
    refuse_bad_query_json(filter=query.filter, sort=query.sort, select=query.select)
    return Selection(
        where=language.condition(query.filter),
        order_by=language.order(query.sort),
        paths=language.paths(query.select),
    )


def selected_paths(select: str | None, language: QueryLanguage) -> list[list[str]]:
    """The select of a one-resource request.

    :raise QueryError: for a select the language cannot apply.
    """
    refuse_bad_query_json(select=select)
    return language.paths(select)


def refuse_bad_query_json(**params: str | None) -> None:
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
                raise QueryError(name, [([], e["msg"], e["type"]) for e in problems]) from None
