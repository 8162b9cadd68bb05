"""Collection of a finalized invoice whose task a dead worker took: charged once, or never
charged twice.

A collection task lost before it claimed the invoice is queued again by the sweeper and
charges once (against localstripe). One lost after its claim (the provider may have
charged) is reported and left alone. "Later" is a sweep with its clock moved on.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings
from portal.db import utcnow
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ops.models import TaskClaim
from portal.ops.sweeper import SweepWindow, sweep
from portal.payments import collection
from portal.payments.models import Payment, PaymentStatus
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, TenantFactory
from tests.payments.test_collection import add_card

GRACE = dt.timedelta(seconds=300)
LATER = GRACE + dt.timedelta(seconds=1)


def _sweep(now: dt.datetime) -> int:
    result = sweep(db.engine, SweepWindow(now=now, grace=GRACE, lease=GRACE))
    assert result.failed == []
    db.session.expire_all()
    return result.counts["collection"]


def _payments(invoice_id: int) -> list[Payment]:
    return list(db.session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice_id)))


@pytest.fixture
def tenant(app):
    tenant = TenantFactory(name="Recovered Tenant")
    BillingProfileFactory(tenant=tenant, billing_email="billing@recovered.example")
    db.session.add(CompanyBillingSettings(tenant_id=tenant.id, auto_collect=True))
    db.session.commit()
    return tenant


@pytest.fixture
def lost_invoice(tenant, monkeypatch):
    """Finalize an invoice while the queue loses its collection task; returns its id."""

    def finalize() -> int:
        monkeypatch.setattr(collection, "collect_invoices_task", lambda ids: None)
        invoice = make_invoice(tenant)
        db.session.commit()
        monkeypatch.undo()
        db.session.expire_all()
        invoice = db.session.get(Invoice, invoice.id)
        assert invoice.status == InvoiceStatus.FINALIZED and invoice.attempt_count == 0
        return invoice.id

    return finalize


def test_lost_collection_is_charged_once(tenant, localstripe, lost_invoice, mailbox):
    add_card(tenant, localstripe)
    invoice_id = lost_invoice()
    assert _sweep(utcnow()) == 0  # within the grace: its task may be on its way
    assert _payments(invoice_id) == []
    assert _sweep(utcnow() + LATER) == 1
    invoice = db.session.get(Invoice, invoice_id)
    assert invoice.status == InvoiceStatus.PAID and invoice.attempt_count == 1
    [payment] = _payments(invoice_id)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert db.session.scalars(sa.select(TaskClaim)).all() == []  # released with the payment
    assert _sweep(utcnow() + 10 * GRACE) == 0
    assert collection.collect_invoice_task.call_local(invoice_id) == "skipped"
    assert len(_payments(invoice_id)) == 1


def test_lost_collection_without_a_method_starts_dunning_once(tenant, lost_invoice, mailbox):
    invoice_id = lost_invoice()
    assert _sweep(utcnow() + LATER) == 1
    invoice = db.session.get(Invoice, invoice_id)
    assert invoice.attempt_count == 1 and invoice.next_attempt_at is not None
    assert _sweep(utcnow() + 2 * LATER) == 0  # dunning has it now


def test_collection_claimed_by_a_dead_worker_is_reported_not_charged_again(
    tenant, localstripe, lost_invoice, caplog
):
    add_card(tenant, localstripe)
    invoice_id = lost_invoice()
    claimed = utcnow()
    db.session.add(
        TaskClaim(
            kind=collection.COLLECTION,
            key=str(invoice_id),
            claimed_at=claimed,
            lease_until=claimed + GRACE,
        )
    )
    db.session.commit()
    # Within the lease the claiming worker may still be charging.
    assert collection.collect_invoice_task.call_local(invoice_id) == "in_progress"
    assert _sweep(utcnow() + LATER) == 0
    assert _payments(invoice_id) == []
    # The lease runs out: the worker died between its claim and its payment.
    claim = db.session.scalars(sa.select(TaskClaim)).one()
    claim.claimed_at, claim.lease_until = claimed - 2 * GRACE, claimed - GRACE
    db.session.commit()
    with caplog.at_level(logging.ERROR, logger="portal.payments.collection"):
        assert _sweep(utcnow() + LATER) == 0
        assert _sweep(utcnow() + 2 * LATER) == 0
    reports = [r for r in caplog.records if "check at the provider" in r.getMessage()]
    assert len(reports) == 1  # reported once
    claim = db.session.scalars(sa.select(TaskClaim)).one()
    assert claim.reported_at is not None
    assert collection.collect_invoice_task.call_local(invoice_id) == "unresolved"
    assert _payments(invoice_id) == []
    # Once someone has checked at the provider and deleted the claim, it is collected.
    db.session.delete(claim)
    db.session.commit()
    assert _sweep(utcnow() + LATER) == 1
    assert len(_payments(invoice_id)) == 1


def test_claim_is_committed_before_the_provider_is_called(tenant, localstripe, monkeypatch):
    add_card(tenant, localstripe)
    monkeypatch.setattr(collection, "collect_invoices_task", lambda ids: None)
    invoice = make_invoice(tenant)
    db.session.commit()
    monkeypatch.undo()
    seen = []
    engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    original = collection.collect_invoice

    def watching(session, invoice, **kwargs):
        with engine.connect() as conn:  # another connection sees only what is committed
            seen.append(conn.execute(sa.text("SELECT kind, key FROM task_claims")).all())
        return original(session, invoice, **kwargs)

    monkeypatch.setattr(collection, "collect_invoice", watching)
    try:
        assert collection.collect_invoice_task.call_local(invoice.id) == "succeeded"
    finally:
        engine.dispose()
    assert seen == [[("collection", str(invoice.id))]]
    assert db.session.scalars(sa.select(TaskClaim)).all() == []
