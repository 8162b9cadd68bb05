"""The upcoming-invoice estimate: the current period planned like the invoice will be."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import Subscription, SubscriptionStatus
from portal.domain.money import Money
from portal.domain.totals import AllowanceCharge, LineInput, Totals, compute_totals
from portal.invoices.generation import InvoicePlan, load_contexts, plan_invoice
from portal.tenancy.models import Tenant


@dataclass(frozen=True)
class Estimate:
    """Month-to-date and projected figures of the tenant's next invoice."""

    period_start: dt.date
    period_end: dt.date  # exclusive; also the next billing date
    elapsed: Fraction  # share of the period that has passed
    to_date: InvoicePlan  # usage so far
    projected: InvoicePlan  # usage extrapolated to the period end
    to_date_totals: Totals
    projected_totals: Totals

    @property
    def next_billing_date(self) -> dt.date:
        return self.period_end

    @property
    def period_last_day(self) -> dt.date:
        return self.period_end - dt.timedelta(days=1)


def _totals(plan: InvoicePlan, currency: str) -> Totals:
    """The plan's totals exactly as recompute_totals() will compute them on the invoice."""
    allowances = [
        AllowanceCharge(
            False, Money(a["amount_minor"], currency), a["vat_category"].value, a["vat_rate"]
        )
        for a in plan.allowance_rows()
    ]
    lines = [
        LineInput(li.quantity, li.unit_price, li.vat_category.value, li.vat_rate)
        for li in plan.lines
    ]
    return compute_totals(lines, currency, allowances)


def estimate(session: Session, tenant: Tenant, now: dt.datetime) -> Estimate | None:
    """The estimate of the invoice for the period containing ``now``; None without one."""
    subscription = session.scalars(
        sa.select(Subscription)
        .where(
            Subscription.tenant_id == tenant.id, Subscription.status != SubscriptionStatus.CANCELED
        )
        .order_by(Subscription.id)
    ).first()
    if subscription is None:
        return None
    start, end = subscription.current_period_start, subscription.current_period_end
    period_start_at = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    period_end_at = dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC)
    now = min(max(now, period_start_at), period_end_at)
    elapsed = Fraction(
        int((now - period_start_at).total_seconds()),
        int((period_end_at - period_start_at).total_seconds()),
    )
    context = load_contexts(session, [tenant], start, end, usage_until=now)[0]
    to_date = plan_invoice(context, start, end)
    # Linear projection of usage to the period end; at the end it is the actual usage.
    projected = plan_invoice(
        context, start, end, usage_scale=1 / elapsed if elapsed else Fraction(1)
    )
    return Estimate(
        start,
        end,
        elapsed,
        to_date,
        projected,
        _totals(to_date, tenant.currency),
        _totals(projected, tenant.currency),
    )
