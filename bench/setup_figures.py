"""Bench figures of issue 16: usage ingestion against a bare COPY of the same rows, and the
subscription-change preview against the invoice-list API, both measured in this run.

Everything they write is rolled back (usage) or never written (the preview rolls back its
savepoint), so the bench database is left as it was.
"""

from __future__ import annotations

import datetime as dt
import io
import time
import uuid
from decimal import Decimal

#: Batches of usage events ingested (1,000 events each), and preview samples.
USAGE_BATCHES = 5
SAMPLES = 200


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def usage_ingestion_figure(app, tenant_id: int, report, figure, log) -> None:
    """Events/s of ``ingest_usage`` for batches of 1,000 against ``COPY`` of the same rows
    into ``usage_records`` (with its rollup triggers), in one transaction rolled back."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from portal.extensions import db
    from portal.tenancy.models import Tenant
    from portal.usage.services import MAX_BATCH, UsageEvent, fingerprint, ingest_usage

    run = uuid.uuid4().hex[:8]
    now = dt.datetime.now(dt.UTC)
    batches = [
        [
            UsageEvent(
                f"bench-{run}-{b}-{n}",
                "api_calls",
                Decimal(1 + n % 50),
                now - dt.timedelta(seconds=n),
            )
            for n in range(MAX_BATCH)
        ]
        for b in range(USAGE_BATCHES)
    ]
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        try:
            session = Session(bind=connection, join_transaction_mode="create_savepoint")
            tenant = session.get(Tenant, tenant_id)
            raw = connection.connection.driver_connection
            copy_seconds = 0.0
            for batch in batches:
                buffer = io.StringIO()
                for event in batch:
                    buffer.write(
                        f"{uuid.uuid4()}\t{tenant_id}\t{event.metric}\t{event.quantity}\t"
                        f"{event.occurred_at.isoformat()}\t{event.idempotency_key}\t"
                        f"{fingerprint(event.metric, event.quantity, event.occurred_at)}\t"
                        f"{{}}\t{now.isoformat()}\n"
                    )
                savepoint = connection.begin_nested()
                started = time.perf_counter()
                with (
                    raw.cursor() as cursor,
                    cursor.copy(
                        "COPY usage_records (public_id, tenant_id, metric, quantity, occurred_at, "
                        "idempotency_key, fingerprint, properties, created_at) FROM STDIN"
                    ) as copy,
                ):
                    copy.write(buffer.getvalue())
                copy_seconds += time.perf_counter() - started
                savepoint.rollback()  # the same keys again for the service below
            started = time.perf_counter()
            for batch in batches:
                results = ingest_usage(session, tenant, batch)
                assert all(r.status == "created" for r in results)
            ingest_seconds = time.perf_counter() - started
            session.close()
        finally:
            outer.rollback()
            connection.close()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as vacuum:
            vacuum.execute(sa.text("VACUUM usage_records"))
            vacuum.execute(sa.text("VACUUM usage_daily_totals"))
    events = USAGE_BATCHES * MAX_BATCH
    log(f"usage: {events} events ingested in {ingest_seconds:.2f} s, COPY {copy_seconds:.2f} s")
    report(
        figure(
            f"usage ingestion, batches of {MAX_BATCH}",
            events / ingest_seconds,
            events / copy_seconds,
            "ev/s",
        )
    )


def preview_figure(app, tenant_id: int, tenant_token: str, report, figure, log) -> None:
    """p99 of ``POST …/subscriptions/{uid}/preview`` (a quantity change) against the tenant
    invoice-list API, both through the whole app in this process (test client)."""
    import sqlalchemy as sa

    from portal.catalog.models import Subscription, SubscriptionStatus, UsageKind
    from portal.catalog.subscriptions import current_period
    from portal.db import utcnow
    from portal.extensions import db
    from portal.tenancy.models import ApiToken, Tenant, TokenKind
    from portal.tenancy.services import create_api_token

    with app.app_context():
        tenant = db.session.get(Tenant, tenant_id)
        subscription = db.session.scalars(
            sa.select(Subscription).where(
                Subscription.tenant_id == tenant_id,
                Subscription.status != SubscriptionStatus.CANCELED,
            )
        ).first()
        item = next(
            (
                i
                for i in (subscription.items if subscription else [])
                if i.price.usage_kind == UsageKind.LICENSED
            ),
            None,
        )
        if item is None:
            log("preview: the large tenant has no licensed subscription item; skipped")
            return
        row, admin_token = create_api_token(
            db.session, kind=TokenKind.ADMIN, name="bench", scopes=["admin:read", "admin:write"]
        )
        db.session.commit()
        token_id = row.id
        start, _ = current_period(subscription, dt.date.today())
        path = (
            f"/api/v1/organizations/companies/{tenant.public_id}/billing/subscriptions/"
            f"{subscription.public_id}/preview"
        )
        body = {
            "change": {
                "priceUid": str(item.price.public_id),
                "quantity": str(item.quantity + 1),
                "effectiveDate": max(start, dt.date.today()).isoformat(),
            }
        }
    client = app.test_client()

    def timed(call) -> list[float]:
        first = call()
        if first.status_code != 200:
            raise RuntimeError(f"{first.status_code}: {first.get_data(as_text=True)[:300]}")
        for _ in range(10):
            call()
        samples = []
        for _ in range(SAMPLES):
            started = time.perf_counter()
            answer = call()
            samples.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        return samples

    try:
        try:
            preview = timed(
                lambda: client.post(
                    path, json=body, headers={"Authorization": f"Bearer {admin_token}"}
                )
            )
        except RuntimeError as exc:
            log(f"preview: refused ({exc}); skipped")
            return
        listing = timed(
            lambda: client.get(
                "/api/v1/billing/invoices", headers={"Authorization": f"Bearer {tenant_token}"}
            )
        )
    finally:
        with app.app_context():
            db.session.get(ApiToken, token_id).revoked_at = utcnow()
            db.session.commit()
    report(figure("subscription-change preview p99", _p99(preview), _p99(listing), "ms"))
