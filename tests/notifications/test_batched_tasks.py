"""A commit that finalizes many invoices queues one task per kind (not one per invoice);
each invoice is still handled once, repeating a task repeats nothing, and one invoice that
fails is retried alone without losing the others."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.catalog.models import CompanyBillingSettings
from portal.extensions import db, queue
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.notifications import delivery, triggers
from portal.notifications.models import OutboxEmail
from portal.notifications.triggers import auto_send_invoice_task, auto_send_invoices_task
from portal.ops.after_commit import after_commit_batch
from portal.payments.collection import collect_invoices_task
from portal.payments.models import Payment
from tests.factories.fixtures import build_tenant_world
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import SellerFactory


@pytest.fixture
def queued_app(app_config):
    """The app with a real (SQLite) queue: tasks wait for a worker instead of running."""
    app_config["QUEUE_IMMEDIATE"] = False
    app = create_app(app_config)
    with app.app_context():
        yield app
        db.session.remove()


def _tenants(count: int):
    seller = SellerFactory()
    tenants = [build_tenant_world(seller, f"Company {n}").tenant for n in range(count)]
    for tenant in tenants:
        db.session.add(CompanyBillingSettings(tenant_id=tenant.id, auto_send=True))
    db.session.commit()
    return tenants


def _finalize_in_one_commit(tenants) -> list[int]:
    ids = []
    for tenant in tenants:
        for month in (7, 8):
            ids.append(
                make_invoice(
                    tenant,
                    period_start=dt.date(2026, month, 1),
                    period_end=dt.date(2026, month, 28),
                ).id
            )
    db.session.commit()
    return ids


def _invoice_emails() -> list[str]:
    return list(
        db.session.scalars(
            sa.select(OutboxEmail.dedupe_key).where(OutboxEmail.template == "invoice")
        )
    )


def _run_pending() -> list:
    """What the worker does: run every queued task; their results."""
    results = []
    while (task := queue.dequeue()) is not None:
        results.append(queue.execute(task))
    return results


def test_one_task_per_kind_for_a_committed_batch(queued_app):
    tenants = _tenants(3)
    _run_pending()  # what setting up the tenants queued
    before = _invoice_emails()
    ids = _finalize_in_one_commit(tenants)
    pending = queue.pending()
    assert sorted(task.name for task in pending) == sorted(
        [auto_send_invoices_task.task_class.__name__, collect_invoices_task.task_class.__name__]
    )
    assert all(task.args == (ids,) for task in pending)
    _run_pending()
    db.session.expire_all()
    statuses = db.session.scalars(sa.select(Invoice.status).where(Invoice.id.in_(ids))).all()
    assert statuses == [InvoiceStatus.SENT] * 6
    sent = _invoice_emails()
    assert len(sent) == len(before) + 6 and len(set(sent)) == len(sent)
    # The worker runs the batch again (a retry, a duplicate): nothing is sent twice.
    assert set(auto_send_invoices_task.call_local(ids).values()) == {"skipped"}
    payments = db.session.scalar(sa.select(sa.func.count()).select_from(Payment))
    assert set(collect_invoices_task.call_local(ids).values()) <= {"skipped", "none"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == payments
    assert sorted(_invoice_emails()) == sorted(sent)


def test_a_failing_invoice_is_retried_alone(queued_app, monkeypatch):
    tenants = _tenants(2)
    _run_pending()
    before = len(_invoice_emails())
    ids = _finalize_in_one_commit(tenants)
    queue.flush()
    broken = ids[1]
    real_send = delivery.send_invoice

    def send_or_fail(session, invoice, *args, **kwargs):
        if invoice.id == broken:
            raise ConnectionError("storage unavailable")
        return real_send(session, invoice, *args, **kwargs)

    monkeypatch.setattr(triggers, "send_invoice", send_or_fail)
    results = auto_send_invoices_task.call_local(ids)
    assert results == {i: ("retrying" if i == broken else "sent") for i in ids}
    assert len(_invoice_emails()) == before + 3
    # The failed invoice waits for its own retry, with the one-invoice task's backoff.
    [retry] = [t for t in queue.pending() if t.name == auto_send_invoice_task.task_class.__name__]
    assert retry.args == (broken,)
    assert retry.eta > dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=50)
    monkeypatch.setattr(triggers, "send_invoice", real_send)
    assert queue.execute(retry, timestamp=retry.eta) == "sent"
    assert len(_invoice_emails()) == before + 4


def test_batches_follow_the_transaction(app):
    seen = []
    session = db.session
    after_commit_batch(session, seen.append, 1)
    after_commit_batch(session, seen.append, 2)
    after_commit_batch(session, seen.append, 1)  # once per commit
    session.commit()
    assert seen == [[1, 2]]
    session.execute(sa.select(1))  # a transaction to roll back
    after_commit_batch(session, seen.append, 3)
    session.rollback()  # dropped with the transaction
    session.commit()
    after_commit_batch(session, seen.append, 4)
    session.commit()
    assert seen == [[1, 2], [4]]
