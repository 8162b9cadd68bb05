"""Subscriptions for operators: subscribe, change, cancel, resume, and what they bill."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.models import (
    BillingInterval,
    PriceModel,
    Subscription,
    SubscriptionChange,
    SubscriptionStatus,
)
from portal.catalog.subscriptions import (
    ItemChange,
    NewItem,
    SubscriptionRefused,
    cancel_subscription,
    change_item,
    create_subscription,
    resume_subscription,
)
from portal.db import utcnow
from portal.extensions import db
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.run import run_invoices
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.ops.models import AuditLogEntry
from portal.usage.models import UsageRecord
from tests.setup.subs_support import ACTOR, D, Shop, new_shop

OCT = dt.date(2026, 10, 1)


@pytest.fixture
def shop(app) -> Shop:
    return new_shop()


def _subscribe(shop, tenant, items=None, **kwargs):
    kwargs.setdefault("start", OCT)
    kwargs.setdefault("today", dt.date(2026, 10, 5))
    if items is None:
        items = [NewItem(shop.flat, D(1)), NewItem(shop.seat, D(3)), NewItem(shop.api)]
    return create_subscription(db.session, tenant, ACTOR, items=items, **kwargs)


def _usage(tenant, quantity, when, key):
    db.session.add(
        UsageRecord(
            tenant_id=tenant.id,
            metric="api_calls",
            quantity=D(quantity),
            occurred_at=dt.datetime.combine(when, dt.time(12), tzinfo=dt.UTC),
            idempotency_key=key,
        )
    )


def _invoice(tenant, kind=InvoiceKind.SUBSCRIPTION):
    return db.session.scalars(
        sa.select(Invoice).where(Invoice.tenant_id == tenant.id, Invoice.kind == kind)
    ).all()


def test_subscribe_stores_items_periods_and_audit(shop):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant, trial_end=dt.date(2026, 10, 8))
    db.session.commit()
    assert subscription.status == SubscriptionStatus.TRIALING
    assert (subscription.current_period_start, subscription.current_period_end) == (
        OCT,
        dt.date(2026, 11, 1),
    )
    assert [(i.price.code, i.quantity) for i in subscription.items] == [
        ("base", 1),
        ("seat", 3),
        ("api", 0),
    ]
    entry = db.session.scalars(sa.select(AuditLogEntry)).one()
    assert entry.action == "subscription.create"
    assert entry.data["after"]["items"][1]["quantity"] == "3"


def test_the_billing_anchor_starts_the_periods(shop):
    tenant = shop.company()
    subscription = _subscribe(
        shop,
        tenant,
        start=dt.date(2026, 10, 10),
        billing_anchor=dt.date(2026, 10, 15),
        today=dt.date(2026, 10, 20),
    )
    assert subscription.started_on == dt.date(2026, 10, 15)
    assert subscription.current_period_end == dt.date(2026, 11, 15)
    db.session.commit()
    # The October run has no period of it to bill (and does not fail on the mid-month
    # anchor); November's bills [15 Oct, 15 Nov).
    assert run_invoices(db.session, "2026-10").created == 0
    run_invoices(db.session, "2026-11")
    (invoice,) = _invoice(tenant)
    assert (invoice.period_start, invoice.period_end) == (
        dt.date(2026, 10, 15),
        dt.date(2026, 11, 14),
    )
    # 30.00 + 3 × 10.00 = 60.00 net, 19 % VAT
    assert invoice.amount_due_minor == 7140


@pytest.mark.parametrize(
    ("build", "code", "field"),
    [
        (lambda s, o: [NewItem(o.flat, D(1))], "unknown_price", "items.0.price"),
        (
            lambda s, o: [
                NewItem(s.price("usd", PriceModel.FLAT, currency="USD", unit_amount=D(1)), D(1))
            ],
            "currency_mismatch",
            "items.0.price",
        ),
        (lambda s, o: [NewItem(s.seat, D(0))], "quantity_not_positive", "items.0.quantity"),
        (lambda s, o: [NewItem(s.seat, D(-2))], "quantity_not_positive", "items.0.quantity"),
        (lambda s, o: [NewItem(s.seat)], "quantity_required", "items.0.quantity"),
        (lambda s, o: [NewItem(s.api, D(5))], "metered_quantity", "items.0.quantity"),
        (lambda s, o: [NewItem(s.seat, D("1e20"))], "invalid_quantity", "items.0.quantity"),
        (lambda s, o: [], "no_items", "items"),
        (lambda s, o: [NewItem(s.seat, D(1)), NewItem(s.seat, D(2))], "duplicate_price", "items.1"),
        (
            lambda s, o: [
                NewItem(s.seat, D(1)),
                NewItem(
                    s.price(
                        "yearly", PriceModel.FLAT, unit_amount=D(1), interval=BillingInterval.YEAR
                    ),
                    D(1),
                ),
            ],
            "interval_mismatch",
            "items",
        ),
    ],
)
def test_bad_items_are_refused_and_nothing_is_written(shop, build, code, field):
    other = Shop()
    tenant = shop.company()
    db.session.commit()
    with pytest.raises(SubscriptionRefused) as refused:
        _subscribe(shop, tenant, items=build(shop, other))
    assert (refused.value.code, refused.value.field) == (code, field)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditLogEntry)) == 0


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"trial_end": OCT}, "end_before_start"),
        ({"trial_end": dt.date(2026, 9, 20)}, "end_before_start"),
        ({"billing_anchor": dt.date(2026, 9, 30)}, "end_before_start"),
        ({"billing_anchor": dt.date(2026, 11, 1)}, "anchor_out_of_range"),
    ],
)
def test_bad_dates_are_refused(shop, kwargs, code):
    tenant = shop.company()
    with pytest.raises(SubscriptionRefused) as refused:
        _subscribe(shop, tenant, **kwargs)
    assert refused.value.code == code


def test_archived_price_and_company_are_refused(shop):
    tenant = shop.company()
    shop.seat.archived_at = utcnow()
    with pytest.raises(SubscriptionRefused) as refused:
        _subscribe(shop, tenant, items=[NewItem(shop.seat, D(1))])
    assert refused.value.code == "price_archived"
    tenant.archived_at = utcnow()
    with pytest.raises(SubscriptionRefused) as refused:
        _subscribe(shop, tenant, items=[NewItem(shop.flat, D(1))])
    assert refused.value.code == "company_archived"


def test_change_is_prorated_by_the_run(shop):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant, items=[NewItem(shop.seat, D(3))])
    seats = subscription.items[0]
    # 3 → 5 seats from 11 October (10 of 31 days on 3 seats)
    change_item(
        db.session,
        subscription,
        ACTOR,
        ItemChange(seats, dt.date(2026, 10, 11), quantity=D(5)),
        today=dt.date(2026, 10, 11),
    )
    db.session.commit()
    run_invoices(db.session, "2026-10")
    (invoice,) = _invoice(tenant)
    # 5 × 10.00 = 50.00; + 3 × 10 × 10/31 = 3 × 3.2258064516 → 9.68; − 5 × 3.2258064516 → 16.13
    assert [line.net_amount_minor for line in invoice.lines] == [5000, 968, -1613]
    assert invoice.tax_exclusive_minor == 4355
    assert invoice.amount_due_minor == 4355 + 827  # 19 % of 43.55 = 8.2745


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            lambda s, sub: ItemChange(sub.items[0], dt.date(2026, 11, 1), quantity=D(2)),
            "outside_current_period",
        ),
        (
            lambda s, sub: ItemChange(sub.items[0], dt.date(2026, 9, 30), quantity=D(2)),
            "outside_current_period",
        ),
        (
            lambda s, sub: ItemChange(sub.items[0], dt.date(2026, 10, 9), quantity=D(0)),
            "quantity_not_positive",
        ),
        (
            lambda s, sub: ItemChange(sub.items[1], dt.date(2026, 10, 9), quantity=D(2)),
            "metered_change",
        ),
        (
            lambda s, sub: ItemChange(
                sub.items[0],
                dt.date(2026, 10, 9),
                price=s.price("usd-seat", PriceModel.PER_UNIT, currency="USD", unit_amount=D(1)),
            ),
            "currency_mismatch",
        ),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_written(shop, change, code):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant, items=[NewItem(shop.seat, D(3)), NewItem(shop.api)])
    db.session.commit()
    with pytest.raises(SubscriptionRefused) as refused:
        change_item(
            db.session, subscription, ACTOR, change(shop, subscription), today=dt.date(2026, 10, 9)
        )
    assert refused.value.code == code
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SubscriptionChange)) == 0
    assert subscription.items[0].quantity == 3


def test_no_change_once_the_period_is_invoiced(shop):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant, items=[NewItem(shop.seat, D(3))])
    db.session.commit()
    run_invoices(db.session, "2026-10", issue_date=dt.date(2026, 10, 20))
    with pytest.raises(SubscriptionRefused) as refused:
        change_item(
            db.session,
            subscription,
            ACTOR,
            ItemChange(subscription.items[0], dt.date(2026, 10, 25), quantity=D(4)),
            today=dt.date(2026, 10, 24),
        )
    assert refused.value.code == "period_invoiced"


def test_cancel_at_period_end_bills_the_period_then_nothing_and_resume_undoes_it(shop):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant, items=[NewItem(shop.flat, D(1))])
    cancel_subscription(
        db.session,
        subscription,
        ACTOR,
        at_period_end=True,
        reason="too expensive",
        today=dt.date(2026, 10, 20),
    )
    db.session.commit()
    assert subscription.cancel_at_period_end and subscription.cancel_reason == "too expensive"
    run_invoices(db.session, "2026-10")
    run_invoices(db.session, "2026-11")
    assert [(i.period_start, i.amount_due_minor) for i in _invoice(tenant)] == [(OCT, 3570)]
    with pytest.raises(SubscriptionRefused) as refused:
        resume_subscription(db.session, subscription, ACTOR, today=dt.date(2026, 11, 3))
    assert refused.value.code == "not_pending_cancellation"  # it has ended
    assert subscription.status == SubscriptionStatus.CANCELED


def test_resume_a_pending_cancellation(shop):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant, items=[NewItem(shop.flat, D(1))])
    cancel_subscription(
        db.session,
        subscription,
        ACTOR,
        at_period_end=True,
        reason="moving",
        today=dt.date(2026, 10, 20),
    )
    resume_subscription(db.session, subscription, ACTOR, today=dt.date(2026, 10, 21))
    db.session.commit()
    assert not subscription.cancel_at_period_end
    run_invoices(db.session, "2026-10")
    run_invoices(db.session, "2026-11")
    assert len(_invoice(tenant)) == 2
    actions = db.session.scalars(sa.select(AuditLogEntry.action).order_by(AuditLogEntry.id))
    assert list(actions) == ["subscription.create", "subscription.cancel", "subscription.resume"]


def test_cancel_at_once_issues_the_final_invoice(shop):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant)
    _usage(tenant, 3000, dt.date(2026, 10, 5), "a")
    _usage(tenant, 5000, dt.date(2026, 10, 12), "after")  # after the end: not billed
    result = cancel_subscription(
        db.session,
        subscription,
        ACTOR,
        at_period_end=False,
        reason="closed",
        on=dt.date(2026, 10, 11),
        today=dt.date(2026, 10, 11),
    )
    db.session.commit()
    invoice = result.invoice
    assert invoice.status == InvoiceStatus.FINALIZED
    assert (invoice.period_start, invoice.period_end) == (OCT, dt.date(2026, 10, 10))
    # flat 30 × 10/31 = 9.6774193548 → 9.68; seats 3 × 3.2258064516 → 9.68;
    # api: 1,000 free, 2,000 × 0.002 = 4.00 → 23.36 net, 4.44 VAT (4.4384)
    assert [line.net_amount_minor for line in invoice.lines] == [968, 968, 0, 400]
    assert invoice.amount_due_minor == 2336 + 444
    assert subscription.status == SubscriptionStatus.CANCELED
    run_invoices(db.session, "2026-10")  # nothing more for the period
    assert len(_invoice(tenant)) == 1


def test_cancel_at_once_after_the_period_was_invoiced_credits_the_unused_time(shop):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant, items=[NewItem(shop.seat, D(3))])
    db.session.commit()
    run_invoices(db.session, "2026-10", issue_date=dt.date(2026, 10, 5))
    result = cancel_subscription(
        db.session,
        subscription,
        ACTOR,
        at_period_end=False,
        reason="closed",
        on=dt.date(2026, 10, 22),
        today=dt.date(2026, 10, 22),
    )
    db.session.commit()
    note = result.credit_note
    assert isinstance(note, CreditNote) and result.invoice is None
    # 10 of 31 days unused: 3 × 10/31 = 0.967742 seats × 10.00 = 9.68 net, 1.84 VAT
    assert note.lines[0].quantity == D("0.967742")
    assert note.amount_due_minor == 968 + 184


def test_cancel_needs_a_reason_and_an_open_subscription(shop):
    tenant = shop.company()
    subscription = _subscribe(shop, tenant, items=[NewItem(shop.flat, D(1))])
    with pytest.raises(SubscriptionRefused) as refused:
        cancel_subscription(
            db.session,
            subscription,
            ACTOR,
            at_period_end=True,
            reason=" ",
            today=dt.date(2026, 10, 6),
        )
    assert refused.value.code == "reason_required"
    with pytest.raises(SubscriptionRefused) as refused:
        cancel_subscription(
            db.session,
            subscription,
            ACTOR,
            at_period_end=False,
            reason="x",
            on=dt.date(2026, 11, 2),
            today=dt.date(2026, 10, 6),
        )
    assert refused.value.code == "outside_current_period"
    cancel_subscription(
        db.session,
        subscription,
        ACTOR,
        at_period_end=False,
        reason="x",
        on=dt.date(2026, 10, 6),
        today=dt.date(2026, 10, 6),
    )
    with pytest.raises(SubscriptionRefused) as refused:
        cancel_subscription(
            db.session,
            subscription,
            ACTOR,
            at_period_end=True,
            reason="x",
            today=dt.date(2026, 10, 6),
        )
    assert refused.value.code == "subscription_canceled"
