"""Usage read models: totals per metric and usage against quotas."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import scoped
from portal.memo import in_transaction
from portal.tenancy.models import Tenant
from portal.usage.models import Quota, UsageDailyTotal, UsageRecord


@dataclass(frozen=True)
class QuotaUsage:
    """One row of the quota usage report."""

    tenant_id: int
    metric: str
    limit: Decimal | None  # None: usage without a quota
    used: Decimal
    is_hard: bool

    @property
    def percent(self) -> Decimal | None:
        if not self.limit:
            return None
        return (self.used * 100 / self.limit).quantize(Decimal("0.1"))

    @property
    def warning_level(self) -> Decimal | None:
        """Usage from which the quota is shown as nearly used (80 %)."""
        return None if self.limit is None else self.limit * Decimal("0.8")

    @property
    def shown_used(self) -> Decimal:
        """Usage capped at the limit, for a meter that cannot overflow."""
        return self.used if self.limit is None else min(self.used, self.limit)

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit


def usage_totals(
    session: Session, tenant_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[tuple[int, str], Decimal]:
    """Usage per (tenant id, metric) in [start, end), summed in SQL.

    Whole UTC days come from the daily rollup (``usage_daily_totals``, kept by triggers);
    records are read only for the partial days at the ends of the period.

    A request asks the same question twice (the estimate, then the quota report), so the
    answer is kept until the transaction writes anything, flushes, commits or rolls back.
    """
    key = ("usage_totals", tuple(sorted(set(tenant_ids))), start, end)
    return dict(
        in_transaction(session, key, lambda: _usage_totals(session, tenant_ids, start, end))
    )


def _usage_totals(
    session: Session, tenant_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[tuple[int, str], Decimal]:
    totals: dict[tuple[int, str], Decimal] = {}
    first_day, end_day = _whole_days(start, end)
    raw_spans = [(start, end)]
    if first_day < end_day:
        # Whole UTC days from the daily rollup; only the partial days at either end of the
        # period read the records themselves.
        days = session.execute(
            sa.select(
                UsageDailyTotal.tenant_id,
                UsageDailyTotal.metric,
                sa.func.sum(UsageDailyTotal.quantity),
            )
            .where(
                UsageDailyTotal.tenant_id.in_(tenant_ids),
                UsageDailyTotal.day >= first_day,
                UsageDailyTotal.day < end_day,
                UsageDailyTotal.records > 0,  # a day whose records were all deleted
            )
            .group_by(UsageDailyTotal.tenant_id, UsageDailyTotal.metric)
        )
        _add(totals, days)
        raw_spans = [(start, _midnight(first_day)), (_midnight(end_day), end)]
    raw_spans = [(a, b) for a, b in raw_spans if a < b]
    if not raw_spans:
        return totals
    # The partial days' metrics, from their rollup rows: the records are then read through
    # the (tenant, metric, time) index for exactly those metrics, and a day without usage
    # is not read at all.
    touched = sorted({day for a, b in raw_spans for day in _days_touched(a, b)})
    pairs = session.execute(
        sa.select(UsageDailyTotal.tenant_id, UsageDailyTotal.metric)
        .where(
            UsageDailyTotal.tenant_id.in_(tenant_ids),
            UsageDailyTotal.day.in_(touched),
            UsageDailyTotal.records > 0,
        )
        .distinct()
    ).all()
    if not pairs:
        return totals
    in_span = sa.or_(
        *(sa.and_(UsageRecord.occurred_at >= a, UsageRecord.occurred_at < b) for a, b in raw_spans)
    )
    records = session.execute(
        sa.select(UsageRecord.tenant_id, UsageRecord.metric, sa.func.sum(UsageRecord.quantity))
        .where(
            UsageRecord.tenant_id.in_({tenant_id for tenant_id, _ in pairs}),
            UsageRecord.metric.in_({metric for _, metric in pairs}),
            in_span,
        )
        .group_by(UsageRecord.tenant_id, UsageRecord.metric)
    )
    _add(totals, records)
    return totals


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _days_touched(start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The UTC days that [start, end) has instants in."""
    first = start.astimezone(dt.UTC).date()
    last = (end.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _whole_days(start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date]:
    """The UTC days lying wholly inside [start, end), as [first, end) (empty if none)."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    first = start.date()
    if start != _midnight(first):
        first += dt.timedelta(days=1)
    return first, end.date()


def _add(totals: dict[tuple[int, str], Decimal], rows) -> None:
    for tenant_id, metric, total in rows:
        if total is not None:
            totals[(tenant_id, metric)] = totals.get((tenant_id, metric), Decimal(0)) + total


def quota_usage_report(
    session: Session, tenant_ids: list[int], start: dt.datetime, end: dt.datetime
) -> list[QuotaUsage]:
    """Usage in [start, end) against each quota, for several tenants in two queries.

    Metrics used without a quota are listed too (limit None), so nothing is hidden.
    """
    used = usage_totals(session, tenant_ids, start, end)
    quotas = {
        (q.tenant_id, q.metric): q
        for q in session.scalars(sa.select(Quota).where(Quota.tenant_id.in_(tenant_ids)))
    }
    rows = [
        QuotaUsage(
            tenant_id,
            metric,
            quota.limit if quota else None,
            used.get((tenant_id, metric), Decimal(0)),
            bool(quota and quota.is_hard),
        )
        for (tenant_id, metric) in sorted(set(used) | set(quotas))
        for quota in [quotas.get((tenant_id, metric))]
    ]
    return rows


def consumption_by_key(
    session: Session, tenant: Tenant, idempotency_key: str
) -> UsageRecord | None:
    """The tenant's usage record written under ``idempotency_key``, if any."""
    return session.scalars(
        scoped(UsageRecord, tenant).where(UsageRecord.idempotency_key == idempotency_key)
    ).first()


def consumption_page(
    session: Session,
    tenant: Tenant,
    *,
    metric: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[UsageRecord], int]:
    """One page of the tenant's usage records, newest first, and the total count.

    :param metric: only this metric.
    :param since: only records at or after this time.
    :param until: only records before this time.
    """
    query = scoped(UsageRecord, tenant)
    if metric:
        query = query.where(UsageRecord.metric == metric)
    if since:
        query = query.where(UsageRecord.occurred_at >= since)
    if until:
        query = query.where(UsageRecord.occurred_at < until)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    query = query.order_by(UsageRecord.occurred_at.desc(), UsageRecord.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset))), int(total)
