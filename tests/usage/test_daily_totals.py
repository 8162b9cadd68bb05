"""The daily usage rollup: triggers keep it equal to the records; period sums agree."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import sqlalchemy as sa

from portal.usage.models import UsageDailyTotal, UsageRecord
from portal.usage.queries import usage_totals
from tests.factories.tenancy import TenantFactory

UTC = dt.UTC
T0 = dt.datetime(2026, 10, 30, tzinfo=UTC)


def _raw_totals(session, tenant_ids, start, end) -> dict[tuple[int, str], Decimal]:
    """The slow answer: every record, summed in Python."""
    totals: dict[tuple[int, str], Decimal] = {}
    for record in session.scalars(
        sa.select(UsageRecord).where(UsageRecord.tenant_id.in_(tenant_ids))
    ):
        if start <= record.occurred_at < end:
            key = (record.tenant_id, record.metric)
            totals[key] = totals.get(key, Decimal(0)) + record.quantity
    return totals


def _rollup_matches_records(session) -> None:
    by_day: dict[tuple[int, str, dt.date], tuple[Decimal, int]] = {}
    for record in session.scalars(sa.select(UsageRecord)):
        key = (record.tenant_id, record.metric, record.occurred_at.astimezone(UTC).date())
        quantity, count = by_day.get(key, (Decimal(0), 0))
        by_day[key] = (quantity + record.quantity, count + 1)
    rows = {
        (row.tenant_id, row.metric, row.day): (row.quantity, row.records)
        for row in session.scalars(sa.select(UsageDailyTotal))
        if row.records
    }
    assert rows == by_day


def _record(tenant, metric, quantity, occurred_at, key) -> UsageRecord:
    return UsageRecord(
        tenant_id=tenant.id,
        metric=metric,
        quantity=Decimal(quantity),
        occurred_at=occurred_at,
        idempotency_key=key,
    )


def test_triggers_keep_the_rollup_through_inserts_updates_and_deletes(session):
    a, b = TenantFactory(), TenantFactory()
    rng = random.Random(5)
    records = []
    for n in range(120):
        tenant = a if n % 3 else b
        occurred = T0 + dt.timedelta(minutes=rng.randrange(4 * 24 * 60))
        quantity = Decimal(rng.randrange(1, 10_000)) / Decimal(1000)
        records.append(
            _record(tenant, rng.choice(["api_calls", "storage_gb"]), quantity, occurred, f"k{n}")
        )
    session.add_all(records)
    session.commit()
    _rollup_matches_records(session)

    # Moving a record to another day and metric, changing its quantity, and deleting some.
    records[0].occurred_at = T0 + dt.timedelta(days=3, hours=23, minutes=59)
    records[1].metric = "seats"
    records[2].quantity = Decimal("0.000001")
    for record in records[3:40]:
        session.delete(record)
    session.commit()
    _rollup_matches_records(session)

    # Raw SQL is covered too: the triggers live in the database, not in the ORM.
    session.execute(sa.delete(UsageRecord).where(UsageRecord.metric == "storage_gb"))
    session.commit()
    _rollup_matches_records(session)


def test_period_sums_agree_with_the_records_for_any_boundaries(session):
    a, b = TenantFactory(), TenantFactory()
    rng = random.Random(11)
    session.add_all(
        _record(
            a if n % 2 else b,
            "api_calls",
            rng.randrange(1, 500),
            T0 + dt.timedelta(seconds=rng.randrange(5 * 86_400)),
            f"p{n}",
        )
        for n in range(200)
    )
    # Records exactly on midnight belong to the day they start.
    session.add(_record(a, "api_calls", 7, dt.datetime(2026, 11, 1, tzinfo=UTC), "midnight"))
    session.commit()
    ids = [a.id, b.id]
    windows = [
        (dt.datetime(2026, 11, 1, tzinfo=UTC), dt.datetime(2026, 12, 1, tzinfo=UTC)),  # month
        (dt.datetime(2026, 10, 30, 13, 5, tzinfo=UTC), dt.datetime(2026, 11, 2, 8, tzinfo=UTC)),
        (dt.datetime(2026, 10, 31, 1, tzinfo=UTC), dt.datetime(2026, 10, 31, 2, tzinfo=UTC)),
        (dt.datetime(2026, 11, 1, tzinfo=UTC), dt.datetime(2026, 11, 1, 0, 0, 1, tzinfo=UTC)),
        # An offset other than UTC: boundaries are instants, whatever their zone.
        (
            dt.datetime(2026, 11, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            dt.datetime(2026, 11, 3, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        ),
    ]
    for _ in range(20):
        start = T0 + dt.timedelta(seconds=rng.randrange(5 * 86_400))
        windows.append((start, start + dt.timedelta(seconds=rng.randrange(1, 3 * 86_400))))
    for start, end in windows:
        session.rollback()  # a fresh transaction: no memo from the previous window
        assert usage_totals(session, ids, start, end) == _raw_totals(session, ids, start, end), (
            start,
            end,
        )


def test_a_day_whose_records_are_all_deleted_adds_no_metric(session):
    tenant = TenantFactory()
    record = _record(tenant, "api_calls", 3, T0 + dt.timedelta(hours=5), "gone")
    session.add(record)
    session.commit()
    session.delete(record)
    session.commit()
    month = (T0 - dt.timedelta(days=2), T0 + dt.timedelta(days=3))
    assert usage_totals(session, [tenant.id], *month) == {}
