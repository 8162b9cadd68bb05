"""The bulk data generator: reconciling totals, gapless numbers, runs on either database."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from portal.devtools.generate import GENERATED_PASSWORD, generate_data
from portal.extensions import db
from portal.invoices.models import DocumentSequence, Invoice, InvoiceLine, InvoiceVatBreakdown
from portal.invoices.run import run_invoices
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement
from portal.payments.models import Payment
from portal.tenancy.models import Membership, Tenant, User
from portal.tenancy.passwords import verify_password
from portal.usage.models import UsageRecord

TODAY = dt.date(2026, 11, 21)
NUMBER = re.compile(r"INV-(\d{4})-(\d{6})")


@pytest.fixture
def generated(app):
    return generate_data(
        db.engine,
        tenants=12,
        invoices_per_tenant=14,
        usage_per_tenant=30,
        seed=7,
        today=TODAY,
        large_tenant_invoices=120,
        large_tenant_usage=200,
        password_hash=None,
    )


def test_counts_and_logins(generated, session):
    assert generated.counts["tenants"] == 12
    assert generated.counts["invoices"] == 11 * 14 + 120
    assert session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 11 * 14 + 120
    assert session.scalar(sa.select(sa.func.count()).select_from(UsageRecord)) == 12 * 30 + 200
    user = session.scalars(sa.select(User).where(User.email == generated.large_tenant_email)).one()
    assert verify_password(user.password_hash, GENERATED_PASSWORD)
    membership = session.scalars(sa.select(Membership).where(Membership.user_id == user.id)).one()
    assert membership.tenant_id == generated.large_tenant_id
    month_start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    in_month = session.scalar(
        sa.select(sa.func.count())
        .select_from(UsageRecord)
        .where(
            UsageRecord.tenant_id == generated.large_tenant_id,
            UsageRecord.occurred_at >= month_start,
        )
    )
    assert in_month >= 200
    # Every invoice lies before the current month and is issued.
    assert session.scalar(sa.select(sa.func.max(Invoice.period_end))) < dt.date(2026, 11, 1)
    assert session.scalar(sa.select(sa.func.min(Invoice.period_start))) >= dt.date(2020, 1, 1)
    statuses = set(session.scalars(sa.select(Invoice.status).distinct()))
    assert InvoiceStatus.DRAFT not in statuses
    assert InvoiceStatus.PAID in statuses


def test_usage_rollup_matches_the_records(generated, session):
    from portal.usage.models import UsageDailyTotal

    expected: dict = defaultdict(lambda: [Decimal(0), 0])
    for record in session.scalars(sa.select(UsageRecord)):
        key = (record.tenant_id, record.metric, record.occurred_at.date())
        expected[key][0] += record.quantity
        expected[key][1] += 1
    rows = {
        (row.tenant_id, row.metric, row.day): [row.quantity, row.records]
        for row in session.scalars(sa.select(UsageDailyTotal))
    }
    assert rows == dict(expected)
    # The trigger is on again after generation: a new record is counted.
    record = session.scalars(sa.select(UsageRecord).limit(1)).one()
    key = (record.tenant_id, record.metric, record.occurred_at.date())
    session.add(
        UsageRecord(
            tenant_id=record.tenant_id,
            metric=record.metric,
            quantity=Decimal(5),
            occurred_at=record.occurred_at,
            idempotency_key="after-generation",
        )
    )
    session.commit()
    row = session.get(UsageDailyTotal, key)
    assert row.records == expected[key][1] + 1


def test_totals_reconcile(generated, session):
    lines = defaultdict(list)
    for line in session.scalars(sa.select(InvoiceLine)):
        lines[line.invoice_id].append(line)
    groups = defaultdict(list)
    for group in session.scalars(sa.select(InvoiceVatBreakdown)):
        groups[group.invoice_id].append(group)
    invoices = session.scalars(sa.select(Invoice)).all()
    assert invoices
    for invoice in invoices:
        own = lines[invoice.id]
        assert [li.position for li in own] == list(range(1, len(own) + 1))
        for line in own:
            exact = line.quantity * line.unit_price * 100
            assert line.net_amount_minor == int(exact.quantize(Decimal(1), ROUND_HALF_UP))
        assert invoice.lines_total_minor == sum(li.net_amount_minor for li in own)
        assert invoice.tax_exclusive_minor == invoice.lines_total_minor
        assert invoice.tax_exclusive_minor == sum(g.taxable_minor for g in groups[invoice.id])
        assert invoice.tax_minor == sum(g.tax_minor for g in groups[invoice.id])
        assert invoice.tax_inclusive_minor == invoice.tax_exclusive_minor + invoice.tax_minor
        assert invoice.amount_due_minor == invoice.tax_inclusive_minor
        if invoice.status == InvoiceStatus.PAID:
            assert invoice.amount_paid_minor == invoice.amount_due_minor
    # The ledger agrees: each tenant's balance is what its open invoices still owe.
    balances = dict(
        session.execute(
            sa.select(LedgerMovement.tenant_id, sa.func.sum(LedgerMovement.amount_minor)).group_by(
                LedgerMovement.tenant_id
            )
        ).all()
    )
    open_amounts = defaultdict(int)
    for invoice in invoices:
        open_amounts[invoice.tenant_id] += invoice.amount_open_minor
    assert {k: int(v) for k, v in balances.items()} == dict(open_amounts)
    paid = sum(1 for i in invoices if i.status == InvoiceStatus.PAID)
    assert session.scalar(sa.select(sa.func.count()).select_from(Payment)) == paid


def test_numbers_gapless_per_seller_and_year(generated, session):
    numbers = defaultdict(list)
    for seller_id, number, issue_date in session.execute(
        sa.select(Invoice.seller_id, Invoice.number, Invoice.issue_date)
    ):
        year, seq = NUMBER.fullmatch(number).groups()
        assert int(year) == issue_date.year
        numbers[(seller_id, int(year))].append((int(seq), issue_date))
    sequences = {
        (s.seller_id, s.year): s.last_number for s in session.scalars(sa.select(DocumentSequence))
    }
    assert set(sequences) == set(numbers)
    for key, taken in numbers.items():
        taken.sort()
        assert [seq for seq, _ in taken] == list(range(1, len(taken) + 1))
        assert [day for _, day in taken] == sorted(day for _, day in taken)  # by issue date
        assert sequences[key] == len(taken)


def test_second_run_adds_and_invoice_run_continues_numbers(generated, session):
    again = generate_data(
        db.engine, tenants=3, invoices_per_tenant=2, usage_per_tenant=5, seed=7, today=TODAY
    )
    assert again.counts["tenants"] == 3
    assert session.scalar(sa.select(sa.func.count()).select_from(Tenant)) == 15
    # The regular invoice run bills the current month after the generated history.
    result = run_invoices(session, "2026-11", issue_date=dt.date(2026, 12, 1))
    assert result.created == 15
    assert result.finalized == 15
    issued = session.scalars(
        sa.select(Invoice).where(Invoice.issue_date == dt.date(2026, 12, 1))
    ).all()
    assert len(issued) == 15
    for invoice in issued:
        assert invoice.amount_due_minor > 0
