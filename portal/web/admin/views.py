"""The admin console for the operator's staff: one module per subject, one blueprint.

The web package registers ``bp`` of each area's ``views`` module; importing the page
modules here is what puts their routes on it.
"""

from __future__ import annotations

from portal.web.admin import (
    audit,
    catalog,
    companies,
    documents,
    invoices,
    jobs,
    ledger,
    quotas,
    sellers,
    subscriptions,
    team,
    usage,
)
from portal.web.admin.blueprint import bp

__all__ = [
    "audit",
    "bp",
    "catalog",
    "companies",
    "documents",
    "invoices",
    "jobs",
    "ledger",
    "quotas",
    "sellers",
    "subscriptions",
    "team",
    "usage",
]
