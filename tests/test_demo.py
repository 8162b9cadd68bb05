"""The demo seed (portal/demo.py) creates through the audited admin services, idempotently."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import sqlalchemy as sa

from portal.catalog.models import Plan, Price, Subscription
from portal.db import Base
from portal.demo import api_calls_in_month, month_start, seed_demo
from portal.extensions import db
from portal.invoices.models import Invoice, InvoiceLine
from portal.invoices.states import InvoiceStatus, LineKind
from portal.ops.models import AuditLogEntry
from portal.tenancy.models import Seller, Tenant
from portal.usage.models import Quota, UsageRecord

#: What the seed makes through services that audit, one entry each.
CREATED = {
    "seller.create": 1,
    "product.create": 3,
    "price.create": 6,
    "company.create": 4,
    "settings.update": 4,
    "quota.create": 4,
    "subscription.create": 4,
}


def _counts() -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            table.name: conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def _seed(session, today: dt.date) -> None:
    seed_demo(session, today)
    session.commit()


def _audited(session, action: str) -> set:
    return set(
        session.execute(
            sa.select(AuditLogEntry.target_id, AuditLogEntry.tenant_id).where(
                AuditLogEntry.action == action, AuditLogEntry.actor_label == "seed-demo"
            )
        )
    )


def test_a_second_run_changes_no_count_and_the_audit_log_holds_every_creation(session):
    today = dt.date.today()
    _seed(session, today)
    first = _counts()
    assert first["tenants"] == 4 and first["invoices"] == 52 and first["quotas"] == 4

    actions = Counter(session.scalars(sa.select(AuditLogEntry.action)))
    assert actions == CREATED
    assert set(session.scalars(sa.select(AuditLogEntry.actor_label))) == {"seed-demo"}
    # Every row of these kinds has its creation entry: none was made past the services.
    for action, model in (
        ("seller.create", Seller),
        ("product.create", Plan),
        ("price.create", Price),
        ("subscription.create", Subscription),
    ):
        ids = {str(uid) for uid in session.scalars(sa.select(model.public_id))}
        assert {target for target, _ in _audited(session, action)} == ids, action
    tenants = {(str(t.public_id), t.id) for t in session.scalars(sa.select(Tenant))}
    assert _audited(session, "company.create") == tenants
    assert {tenant_id for _, tenant_id in _audited(session, "settings.update")} == {
        tenant_id for _, tenant_id in tenants
    }
    quotas = set(session.execute(sa.select(Quota.metric, Quota.tenant_id)))
    assert _audited(session, "quota.create") == quotas

    _seed(session, today)
    assert _counts() == first


def test_the_demo_content_is_what_the_services_were_asked_for(session):
    today = dt.date.today()
    _seed(session, today)
    acme = session.scalars(sa.select(Tenant).where(Tenant.slug == "acme")).one()
    subscription = session.scalars(
        sa.select(Subscription).where(Subscription.tenant_id == acme.id)
    ).one()
    assert subscription.started_on == month_start(today, 12)
    assert subscription.current_period_start == month_start(today, 0)
    assert sorted(item.quantity for item in subscription.items) == [0, 1, 8]
    api = session.scalars(sa.select(Price).where(Price.code == "api-calls-eur")).one()
    assert [(t.up_to, t.unit_amount) for t in api.tiers] == [
        (Decimal(10000), Decimal(0)),
        (Decimal(100000), Decimal("0.002")),
        (None, Decimal("0.001")),
    ]
    quota = session.scalars(sa.select(Quota).where(Quota.tenant_id == acme.id)).one()
    assert (quota.metric, quota.limit, quota.is_hard) == ("api_calls", Decimal(150000), False)
    # A past month bills the month's usage event through the graduated tiers.
    march = month_start(today, 3)
    invoice = session.scalars(
        sa.select(Invoice).where(Invoice.tenant_id == acme.id, Invoice.period_start == march)
    ).one()
    usage = sum(line.quantity for line in invoice.lines if line.kind == LineKind.USAGE)
    assert usage == api_calls_in_month("acme", 3)
    assert invoice.status == InvoiceStatus.PAID


def _current_usage(session, tenant: Tenant, today: dt.date) -> Decimal:
    start = month_start(today, 0)
    return sum(
        session.scalars(
            sa.select(InvoiceLine.quantity)
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(
                Invoice.tenant_id == tenant.id,
                Invoice.period_start == start,
                InvoiceLine.kind == LineKind.USAGE,
            )
        ),
        Decimal(0),
    )


def test_a_later_day_adds_its_usage_the_way_the_usage_api_says(session):
    """The usage API refuses events of a drafted period ("delete the draft and generate it
    again"): seeded again the next day, the seed does so for the current month's draft."""
    day = month_start(dt.date.today(), 1) + dt.timedelta(days=10)  # in the past: all billed
    _seed(session, day)
    first = _counts()
    acme = session.scalars(sa.select(Tenant).where(Tenant.slug == "acme")).one()
    before = _current_usage(session, acme, day)

    later = day + dt.timedelta(days=1)
    _seed(session, later)
    counts = _counts()
    assert counts["usage_records"] == first["usage_records"] + 4  # the new day, per company
    assert counts["invoices"] == first["invoices"]  # the drafts were made again
    assert (
        _current_usage(session, acme, later)
        == before + api_calls_in_month("acme", 0) // 30 + later.day * 37
    )
    deleted = session.scalars(
        sa.select(AuditLogEntry.tenant_id).where(AuditLogEntry.action == "invoice.delete_draft")
    ).all()
    assert len(deleted) == 4 and acme.id in deleted
    drafts = session.scalars(
        sa.select(Invoice.status).where(Invoice.period_start == day.replace(day=1))
    )
    assert set(drafts) == {InvoiceStatus.DRAFT}

    _seed(session, later)
    assert _counts() == counts
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(UsageRecord)
            .where(UsageRecord.tenant_id == acme.id)
        )
        == 12 + later.day
    )
