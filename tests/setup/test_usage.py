"""Usage events in batches: once per key, duplicates and conflicts, invoiced periods, limits;
through the service and the console API."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from portal.catalog.subscriptions import NewItem, create_subscription
from portal.extensions import db
from portal.invoices.run import run_invoices
from portal.usage.models import UsageRecord
from portal.usage.services import (
    UsageBatchRefused,
    UsageBatchTooLarge,
    UsageEvent,
    fingerprint,
    ingest_usage,
    record_consumption,
)
from tests.api_console.conftest import ConsoleClient, admin_token
from tests.factories.tenancy import TenantFactory
from tests.setup.subs_support import ACTOR, D, Shop, new_shop

T0 = dt.datetime(2026, 10, 3, 10, tzinfo=dt.UTC)


def _event(key, quantity="5", when=T0, metric="api_calls"):
    return UsageEvent(key, metric, quantity, when)


def _count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(UsageRecord))


def test_fingerprint_is_the_sha256_of_the_canonical_body():
    body = '{"metric":"api_calls","occurred_at":"2026-10-03T10:00:00.000000+00:00","quantity":"5"}'
    assert fingerprint("api_calls", D("5.000"), T0) == hashlib.sha256(body.encode()).hexdigest()
    later = T0.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert fingerprint("api_calls", D(5), later) == fingerprint("api_calls", D("5.0"), T0)


def test_a_batch_is_recorded_once_per_key(app):
    tenant = TenantFactory()
    results = ingest_usage(db.session, tenant, [_event("a"), _event("b", "2.5"), _event("a")])
    assert [r.status for r in results] == ["created", "created", "duplicate"]
    assert results[2].public_id == results[0].public_id
    db.session.commit()
    again = ingest_usage(db.session, tenant, [_event("a"), _event("c")])
    assert [r.status for r in again] == ["duplicate", "created"]
    assert again[0].public_id == results[0].public_id
    db.session.commit()
    assert _count() == 3
    record = db.session.scalars(
        sa.select(UsageRecord).where(UsageRecord.idempotency_key == "b")
    ).one()
    assert record.fingerprint == fingerprint("api_calls", D("2.5"), T0)


def test_another_body_under_a_key_refuses_the_batch(app):
    tenant = TenantFactory()
    ingest_usage(db.session, tenant, [_event("a")])
    db.session.commit()
    with pytest.raises(UsageBatchRefused) as refused:
        ingest_usage(db.session, tenant, [_event("new"), _event("a", "6")])
    assert [(r.status, r.http_status) for r in refused.value.results] == [
        ("not_written", 424),
        ("conflict", 409),
    ]
    db.session.rollback()
    assert _count() == 1


def test_a_key_twice_in_one_batch_with_other_bodies_is_a_conflict(app):
    tenant = TenantFactory()
    with pytest.raises(UsageBatchRefused) as refused:
        ingest_usage(db.session, tenant, [_event("a"), _event("a", when=T0 + dt.timedelta(1))])
    assert [r.status for r in refused.value.results] == ["not_written", "conflict"]
    db.session.rollback()
    assert _count() == 0


@pytest.mark.parametrize(
    "event",
    [
        _event("", "1"),
        _event("has space", "1"),
        _event("k", "-1"),
        _event("k", 1.5),
        _event("k", "1.0000001"),
        _event("k", "1e13"),
        _event("k", "NaN"),
        _event("k", "1", when=dt.datetime(2026, 10, 3)),
        _event("k", "1", metric="bad metric"),
        _event("k", "1", metric="x" * 61),
    ],
)
def test_invalid_events_refuse_the_batch(app, event):
    tenant = TenantFactory()
    with pytest.raises(UsageBatchRefused) as refused:
        ingest_usage(db.session, tenant, [_event("ok"), event])
    assert [r.status for r in refused.value.results] == ["not_written", "invalid"]
    db.session.rollback()
    assert _count() == 0


def test_more_than_a_thousand_events_are_refused_before_anything(app):
    tenant = TenantFactory()
    with pytest.raises(UsageBatchTooLarge):
        ingest_usage(db.session, tenant, [_event(f"k{i}") for i in range(1001)])
    assert len(ingest_usage(db.session, tenant, [_event(f"k{i}") for i in range(1000)])) == 1000


def test_an_event_in_an_invoiced_period_is_refused_with_the_remedy(app):
    shop = new_shop()
    tenant = shop.company()
    create_subscription(
        db.session,
        tenant,
        ACTOR,
        items=[NewItem(shop.api)],
        start=dt.date(2026, 10, 1),
        today=dt.date(2026, 10, 1),
    )
    ingest_usage(db.session, tenant, [_event("early")])
    db.session.commit()
    run_invoices(db.session, "2026-10")
    with pytest.raises(UsageBatchRefused) as refused:
        ingest_usage(
            db.session,
            tenant,
            [
                _event("late", when=T0 + dt.timedelta(days=5)),
                _event("next", when=dt.datetime(2026, 11, 2, tzinfo=dt.UTC)),
            ],
        )
    late, following = refused.value.results
    assert (late.status, late.http_status) == ("period_invoiced", 409)
    assert late.invoice_number and late.invoice_number in late.remedy
    assert "next period" in late.remedy and "credit note" in late.remedy
    assert following.status == "not_written"
    db.session.rollback()
    # The repeat of an event already billed is still just a duplicate.
    assert [r.status for r in ingest_usage(db.session, tenant, [_event("early")])] == ["duplicate"]


def test_the_account_api_write_shares_the_path_and_keeps_its_fingerprint(app):
    tenant = TenantFactory()
    record = record_consumption(
        db.session,
        tenant,
        metric="api_calls",
        quantity=D("5"),
        occurred_at=T0,
        idempotency_key="acct",
        properties={},
    )
    assert record.fingerprint == fingerprint("api_calls", D(5), T0)
    (result,) = ingest_usage(db.session, tenant, [_event("acct")])
    assert result.status == "duplicate" and result.public_id == record.public_id


# -- console API -----------------------------------------------------------------------------


@pytest.fixture
def console(client, world) -> ConsoleClient:
    return ConsoleClient(client, admin_token())


def _post(console, tenant, events):
    return console.post(f"/{tenant.public_id}/billing/usage", json={"events": events})


def _wire(key, quantity="5", timestamp="2026-10-03T10:00:00Z", metric="api_calls"):
    return {"idempotencyKey": key, "metric": metric, "quantity": quantity, "timestamp": timestamp}


def test_api_batch_with_duplicates(console, world):
    tenant = world.a.tenant
    before = _count()
    answer = _post(console, tenant, [_wire("a"), _wire("b", 3), _wire("a")])
    assert answer.status_code == 200, answer.get_json()
    data = answer.get_json()["data"]
    assert (data["created"], data["duplicates"]) == (2, 1)
    assert [(r["status"], r["code"]) for r in data["results"]] == [
        ("created", 201),
        ("created", 201),
        ("duplicate", 200),
    ]
    again = _post(console, tenant, [_wire("a")]).get_json()["data"]["results"][0]
    assert again["status"] == "duplicate" and again["usageUid"] == data["results"][0]["usageUid"]
    assert _count() == before + 2


def test_api_duplicate_key_with_another_body_is_409_and_writes_nothing(console, world):
    tenant = world.a.tenant
    _post(console, tenant, [_wire("a")])
    before = _count()
    answer = _post(console, tenant, [_wire("fresh"), _wire("a", "6")])
    assert answer.status_code == 409
    payload = answer.get_json()
    assert payload["data"] is None
    assert [(e["location"], e["type"]) for e in payload["errors"]] == [
        ("body/events/0", "batch_refused"),
        ("body/events/1", "idempotency_conflict"),
    ]
    assert _count() == before


def test_api_batch_of_1001_is_422_and_writes_nothing(console, world):
    before = _count()
    answer = _post(console, world.a.tenant, [_wire(f"k{i}") for i in range(1001)])
    assert answer.status_code == 422
    assert answer.get_json()["errors"][0]["type"] == "batch_too_large"
    assert _count() == before


@pytest.mark.parametrize(
    "event",
    [
        _wire("k", 1.5),
        _wire("k", timestamp="2026-10-03T10:00:00"),
        _wire("k", timestamp="yesterday"),
        {"idempotencyKey": "k", "metric": "api_calls", "quantity": "1"},
        {**_wire("k"), "extra": 1},
        _wire("k", "-1"),
        _wire("k\u0000"),
        _wire("k", metric="bad metric"),
    ],
)
def test_api_bad_events_are_4xx_and_write_nothing(console, world, event):
    before = _count()
    answer = _post(console, world.a.tenant, [_wire("ok"), event])
    assert 400 <= answer.status_code < 500, answer.get_json()
    assert answer.get_json()["errors"]
    assert _count() == before


def test_api_unknown_company_is_404(console, world):
    assert (
        console.post(
            "/00000000-0000-4000-8000-000000000000/billing/usage", json={"events": [_wire("a")]}
        ).status_code
        == 404
    )


def test_api_event_in_an_invoiced_period(console, world):
    shop = Shop(world.a.tenant.seller)
    tenant = shop.company()
    create_subscription(
        db.session,
        tenant,
        ACTOR,
        items=[NewItem(shop.api)],
        start=dt.date(2026, 10, 1),
        today=dt.date(2026, 10, 1),
    )
    db.session.commit()
    assert _post(console, tenant, [_wire("early", "5000")]).status_code == 200
    run_invoices(db.session, "2026-10")
    answer = _post(console, tenant, [_wire("late", timestamp="2026-10-20T08:00:00+02:00")])
    assert answer.status_code == 409
    error = answer.get_json()["errors"][0]
    assert error["type"] == "period_invoiced" and "credit note" in error["message"]
    assert error["location"] == "body/events/0"
