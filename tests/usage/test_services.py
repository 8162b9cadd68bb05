"""Recording a consumption once per idempotency key (usage/services.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.usage.models import UsageRecord
from portal.usage.services import ConsumptionConflict, record_consumption
from tests.factories.tenancy import TenantFactory

T0 = dt.datetime(2026, 10, 3, 10, tzinfo=dt.UTC)


def _record(session, tenant, **change):
    values = {
        "metric": "api_calls",
        "quantity": Decimal("12.5"),
        "occurred_at": T0,
        "idempotency_key": "k-1",
        "properties": {"region": "eu"},
        **change,
    }
    return record_consumption(session, tenant, **values)


def test_a_key_records_once_and_answers_the_first_record_again(session):
    tenant = TenantFactory()
    first = _record(session, tenant)
    assert first.quantity == Decimal("12.500000")  # as stored
    again = _record(session, tenant, properties={"region": "us"})  # properties not compared
    assert again.id == first.id
    count = session.scalar(sa.select(sa.func.count()).select_from(UsageRecord))
    assert count == 1


@pytest.mark.parametrize(
    "change",
    [
        {"metric": "storage_gb"},
        {"quantity": Decimal("13")},
        {"occurred_at": T0 + dt.timedelta(seconds=1)},
    ],
)
def test_the_same_key_with_other_data_is_a_conflict(session, change):
    tenant = TenantFactory()
    _record(session, tenant)
    with pytest.raises(ConsumptionConflict):
        _record(session, tenant, **change)


def test_keys_are_per_tenant(session):
    a, b = TenantFactory(), TenantFactory()
    assert _record(session, a).id != _record(session, b, metric="storage_gb").id
