"""Quotas (usage/quotas.py): set, change and remove, validated and audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.ops.audit import Actor, AdminActionRefused
from portal.ops.models import AuditLogEntry
from portal.usage.models import Quota
from portal.usage.queries import quota_usage_report
from portal.usage.quotas import (
    QuotaInvalid,
    company_quotas,
    find_quota,
    remove_quota,
    set_quota,
)
from tests.factories.tenancy import TenantFactory

ACTOR = Actor(label="ops@example.com", ip_address="127.0.0.1")


def _counts(session) -> tuple[int, int]:
    return tuple(
        session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Quota, AuditLogEntry)
    )


def _entries(session) -> list[AuditLogEntry]:
    return list(session.scalars(sa.select(AuditLogEntry).order_by(AuditLogEntry.id)))


def test_set_creates_then_changes_and_audits_each_change(session):
    tenant = TenantFactory()
    quota = set_quota(session, tenant, {"metric": "api_calls", "limit": "150000"}, ACTOR)
    session.commit()
    assert (quota.metric, quota.limit, quota.is_hard) == ("api_calls", Decimal(150000), False)

    changed = set_quota(
        session, tenant, {"metric": "api_calls", "limit": 2000, "is_hard": True}, ACTOR
    )
    session.commit()
    assert changed.id == quota.id  # one quota per metric
    assert (changed.limit, changed.is_hard) == (Decimal(2000), True)
    same = set_quota(
        session, tenant, {"metric": "api_calls", "limit": "2000.0", "is_hard": "on"}, ACTOR
    )
    assert same.id == quota.id

    entries = _entries(session)
    assert [e.action for e in entries] == ["quota.create", "quota.update"]  # no-op: no entry
    assert entries[0].data == {
        "after": {"metric": "api_calls", "limit": "150000", "is_hard": False}
    }
    assert entries[1].data["before"]["limit"] == "150000"
    assert entries[1].data["after"] == {"metric": "api_calls", "limit": "2000", "is_hard": True}
    assert {e.tenant_id for e in entries} == {tenant.id}
    assert {e.actor_label for e in entries} == {"ops@example.com"}


def test_quotas_are_per_company_and_reach_the_report(session):
    tenant, other = TenantFactory(), TenantFactory()
    set_quota(session, tenant, {"metric": "storage_gb", "limit": "50.5"}, ACTOR)
    set_quota(session, tenant, {"metric": "api_calls", "limit": 10}, ACTOR)
    set_quota(session, other, {"metric": "api_calls", "limit": 99}, ACTOR)
    session.commit()
    assert [q.metric for q in company_quotas(session, tenant)] == ["api_calls", "storage_gb"]
    assert find_quota(session, other, "storage_gb") is None
    assert find_quota(session, other, "api_calls").limit == Decimal(99)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = quota_usage_report(session, [tenant.id], start, start + dt.timedelta(days=31))
    assert {(row.metric, row.limit) for row in rows} == {
        ("api_calls", Decimal(10)),
        ("storage_gb", Decimal("50.5")),
    }


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"metric": "api_calls"}, "limit"),
        ({"metric": "api_calls", "limit": ""}, "limit"),
        ({"metric": "api_calls", "limit": 1.5}, "limit"),  # a float, never
        ({"metric": "api_calls", "limit": True}, "limit"),
        ({"metric": "api_calls", "limit": "-1"}, "limit"),
        ({"metric": "api_calls", "limit": "1.0000001"}, "limit"),
        ({"metric": "api_calls", "limit": "1e13"}, "limit"),
        ({"metric": "api_calls", "limit": "NaN"}, "limit"),
        ({"metric": "api_calls", "limit": "lots"}, "limit"),
        ({"metric": "api_calls", "limit": [1]}, "limit"),
        ({"metric": "", "limit": 1}, "metric"),
        ({"metric": "api calls", "limit": 1}, "metric"),
        ({"metric": "x" * 61, "limit": 1}, "metric"),
        ({"metric": 7, "limit": 1}, "metric"),
        ({"limit": 1}, "metric"),
        ({"metric": "api_calls", "limit": 1, "is_hard": "maybe"}, "is_hard"),
        ({"metric": "api_calls", "limit": 1, "period": "month"}, "period"),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(session, values, field):
    tenant = TenantFactory()
    set_quota(session, tenant, {"metric": "api_calls", "limit": 5}, ACTOR)
    session.commit()
    before = _counts(session)
    with pytest.raises(QuotaInvalid) as caught:
        set_quota(session, tenant, values, ACTOR)
    assert field in caught.value.errors
    session.rollback()
    assert _counts(session) == before
    assert find_quota(session, tenant, "api_calls").limit == Decimal(5)


def test_not_a_mapping_is_refused(session):
    with pytest.raises(QuotaInvalid) as caught:
        set_quota(session, TenantFactory(), ["api_calls", 5], ACTOR)  # type: ignore[arg-type]
    assert "body" in caught.value.errors


def test_remove_audits_and_an_absent_quota_is_refused(session):
    tenant = TenantFactory()
    set_quota(session, tenant, {"metric": "api_calls", "limit": 5}, ACTOR)
    session.commit()
    remove_quota(session, tenant, "api_calls", ACTOR)
    session.commit()
    assert company_quotas(session, tenant) == []
    assert _entries(session)[-1].action == "quota.remove"
    assert _entries(session)[-1].data == {
        "before": {"metric": "api_calls", "limit": "5", "is_hard": False}
    }
    with pytest.raises(AdminActionRefused) as caught:
        remove_quota(session, tenant, "api_calls", ACTOR)
    assert caught.value.code == "no_quota"


def test_an_archived_company_is_refused_under_its_lock(session):
    tenant = TenantFactory()
    set_quota(session, tenant, {"metric": "api_calls", "limit": 5}, ACTOR)
    tenant.archived_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    session.commit()
    before = _counts(session)
    for refused in (
        lambda: set_quota(session, tenant, {"metric": "api_calls", "limit": 9}, ACTOR),
        lambda: remove_quota(session, tenant, "api_calls", ACTOR),
    ):
        with pytest.raises(AdminActionRefused) as caught:
            refused()
        assert caught.value.code == "archived"
        session.rollback()
    assert _counts(session) == before
