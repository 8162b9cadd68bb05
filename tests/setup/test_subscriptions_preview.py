"""The preview of a subscription change is the invoice the run later issues, line for line."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.catalog.models import CompanyBillingSettings, PriceModel, Subscription
from portal.catalog.subscriptions import (
    ItemChange,
    NewItem,
    SubscriptionRefused,
    change_item,
    create_subscription,
    preview,
)
from portal.extensions import db
from portal.invoices.charges import NewCharge, add_charge
from portal.invoices.models import Invoice
from portal.invoices.run import run_invoices
from portal.invoices.states import InvoiceKind
from portal.usage.models import UsageRecord
from tests.setup.subs_support import ACTOR, D, Shop, new_shop


@pytest.fixture
def shop(app) -> Shop:
    shop = new_shop()
    shop.pack = shop.price("pack", PriceModel.PACKAGE, unit_amount=D("25.00"), package_size=D(10))
    db.session.commit()
    return shop


def _issued(tenant) -> Invoice:
    return db.session.scalars(
        sa.select(Invoice).where(
            Invoice.tenant_id == tenant.id, Invoice.kind == InvoiceKind.SUBSCRIPTION
        )
    ).one()


def _as_rows(lines):
    return [
        (
            li.kind,
            li.description,
            li.quantity,
            li.unit_price,
            li.net_amount_minor,
            getattr(li.vat_category, "value", li.vat_category),
            li.vat_rate,
        )
        for li in lines
    ]


TOTALS = (
    "lines_total_minor",
    "allowance_total_minor",
    "charge_total_minor",
    "tax_exclusive_minor",
    "tax_minor",
    "tax_inclusive_minor",
    "amount_due_minor",
)


def _check(
    shop,
    anchor_day,
    flat,
    metered,
    seats,
    trial_days,
    discount,
    usage,
    change_day,
    new_quantity,
    switch,
    charge,
):
    tenant = shop.company()
    if discount:
        db.session.add(CompanyBillingSettings(tenant_id=tenant.id, discount_percent=D(discount)))
    anchor = dt.date(2026, 10, anchor_day)
    items = [NewItem(shop.seat, D(seats))]
    if flat:
        items.insert(0, NewItem(shop.flat, D(1)))
    if metered:
        items.append(NewItem(shop.api))
    subscription = create_subscription(
        db.session,
        tenant,
        ACTOR,
        items=items,
        start=anchor,
        trial_end=anchor + dt.timedelta(days=trial_days) if trial_days else None,
        today=anchor,
    )
    period_days = (subscription.current_period_end - anchor).days
    for n, (day, quantity) in enumerate(usage):
        db.session.add(
            UsageRecord(
                tenant_id=tenant.id,
                metric="api_calls",
                quantity=D(quantity),
                occurred_at=dt.datetime.combine(
                    anchor + dt.timedelta(days=day % period_days), dt.time(9), tzinfo=dt.UTC
                ),
                idempotency_key=f"u{n}",
            )
        )
    if charge:
        add_charge(db.session, tenant, ACTOR, NewCharge("Setup", "1", charge))
    db.session.commit()
    on = anchor + dt.timedelta(days=change_day % period_days)
    change = ItemChange(
        subscription.items[1 if flat else 0],
        on,
        quantity=D(new_quantity),
        price={"pro": shop.seat_pro, "pack": shop.pack}.get(switch),
    )
    try:
        previewed = preview(db.session, subscription, change, today=on)
    except SubscriptionRefused:
        db.session.rollback()
        return
    db.session.commit()  # the preview wrote nothing
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Invoice).where(Invoice.tenant_id == tenant.id)
        )
        == 0
    )
    change_item(db.session, subscription, ACTOR, change, today=on)
    db.session.commit()
    last_day = subscription.current_period_end - dt.timedelta(days=1)
    run_invoices(db.session, f"{last_day:%Y-%m}")
    if previewed is None:  # nothing to bill (e.g. a trial over the whole period)
        assert (
            db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).all() == []
        )
    else:
        invoice = _issued(tenant)
        assert _as_rows(previewed.lines) == _as_rows(invoice.lines)
        assert previewed.totals == {name: getattr(invoice, name) for name in TOTALS}
        assert [a["amount_minor"] for a in previewed.allowances] == [
            a.amount_minor for a in invoice.allowance_charges
        ]
        assert (previewed.period_start, previewed.period_end) == (
            invoice.period_start,
            invoice.period_end,
        )
    # Out of the way of the next example's run.
    db.session.execute(
        sa.update(Subscription).where(Subscription.tenant_id == tenant.id).values(status="canceled")
    )
    db.session.commit()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    anchor_day=st.integers(1, 28),
    flat=st.booleans(),
    metered=st.booleans(),
    seats=st.integers(1, 40),
    trial_days=st.sampled_from([0, 0, 5, 20, 45]),
    discount=st.sampled_from([0, 0, 10, 12.5]),
    usage=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 4000)), max_size=4),
    change_day=st.integers(0, 40),
    new_quantity=st.integers(1, 60),
    switch=st.sampled_from([None, None, "pro", "pack"]),
    charge=st.sampled_from([None, None, "149.90"]),
)
def test_preview_equals_the_issued_invoice(shop, **example):
    _check(shop, **example)


def test_preview_of_a_refused_change_is_refused(shop):
    tenant = shop.company()
    subscription = create_subscription(
        db.session,
        tenant,
        ACTOR,
        items=[NewItem(shop.seat, D(2))],
        start=dt.date(2026, 10, 1),
        today=dt.date(2026, 10, 1),
    )
    db.session.commit()
    with pytest.raises(SubscriptionRefused) as refused:
        preview(
            db.session,
            subscription,
            ItemChange(subscription.items[0], dt.date(2026, 11, 3), quantity=D(3)),
            today=dt.date(2026, 10, 2),
        )
    assert refused.value.code == "outside_current_period"


def test_preview_without_a_change_is_the_period_invoice(shop):
    tenant = shop.company()
    subscription = create_subscription(
        db.session,
        tenant,
        ACTOR,
        items=[NewItem(shop.seat, D(2))],
        start=dt.date(2026, 10, 1),
        today=dt.date(2026, 10, 1),
    )
    db.session.commit()
    previewed = preview(db.session, subscription, today=dt.date(2026, 10, 2))
    assert previewed.totals["amount_due_minor"] == 2380
