"""Spend per month: what a tenant was invoiced in each of the last months."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain.money import Money
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.tenancy.models import Tenant

#: Issued invoices count as spend; voided ones do not.
SPEND_STATUSES = (
    InvoiceStatus.FINALIZED,
    InvoiceStatus.SENT,
    InvoiceStatus.PAID,
    InvoiceStatus.UNCOLLECTIBLE,
)


@dataclass(frozen=True)
class MonthSpend:
    month: dt.date  # first day of the month
    amount: Money


def monthly_spend(
    session: Session, tenant: Tenant, today: dt.date, months: int = 12
) -> list[MonthSpend]:
    """Invoiced totals by issue month, oldest first, including months without invoices."""
    index = today.year * 12 + today.month - 1
    firsts = [
        dt.date((index - back) // 12, (index - back) % 12 + 1, 1)
        for back in range(months - 1, -1, -1)
    ]
    totals = dict.fromkeys(firsts, 0)
    rows = session.execute(
        sa.select(Invoice.issue_date, Invoice.amount_due_minor).where(
            Invoice.tenant_id == tenant.id,
            Invoice.status.in_(SPEND_STATUSES),
            Invoice.currency == tenant.currency,
            Invoice.issue_date >= firsts[0],
        )
    )
    for issue_date, amount in rows:
        first = issue_date.replace(day=1)
        if first in totals:
            totals[first] += amount
    return [MonthSpend(first, Money(total, tenant.currency)) for first, total in totals.items()]
