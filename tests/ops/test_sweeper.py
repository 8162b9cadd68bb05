"""The sweeper: e-mails and webhook events a dead worker took are queued again, once.

The queue runs tasks at once here (QUEUE_IMMEDIATE), so a sweep that re-enqueues a row also
delivers or processes it before it returns; tests that look at the queue itself switch to
the SQLite queue file. "Later" is a sweep whose clock is moved on, never a sleep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from portal.db import utcnow
from portal.extensions import db, queue
from portal.notifications import outbox
from portal.notifications.models import OutboxEmail, OutboxStatus
from portal.ops.sweeper import SweepWindow, registered_sweeps, sweep, sweep_now
from portal.payments import webhooks
from portal.payments.models import ProviderEvent, ProviderEventStatus
from tests.conftest import free_port

GRACE = dt.timedelta(seconds=300)  # the defaults the test app runs with
LEASE = dt.timedelta(seconds=300)


def _sweep(now: dt.datetime | None = None) -> dict[str, int]:
    result = sweep(db.engine, SweepWindow(now=now or utcnow(), grace=GRACE, lease=LEASE))
    assert result.failed == []
    db.session.expire_all()
    return result.counts


def _email(**values) -> OutboxEmail:
    """An outbox row as a lost task leaves it (no task queued for it)."""
    email = OutboxEmail(
        template="password_reset",
        dedupe_key=f"test:{uuid.uuid4()}",
        to_addrs=["someone@example.com"],
        subject="Reset your billing portal password",
        body_text="Hello",
        **values,
    )
    db.session.add(email)
    db.session.commit()
    return email


def _message_ids(messages) -> list[str]:
    return [message["Message-ID"] for message in messages]


def _stored(model, row_id):
    """The row as committed now (not as this session last saw it)."""
    db.session.expire_all()
    return db.session.get(model, row_id)


class WorkerDied(BaseException):
    """What kill -9 does to a task: nothing after this point runs, nothing is caught."""


# -- e-mails --------------------------------------------------------------------------------


def test_every_kind_of_background_row_has_a_sweep(app):
    assert set(registered_sweeps()) == {"email", "webhook", "collection", "job"}


def test_email_queued_past_the_grace_is_delivered_once(app, mailbox):
    email = _email()
    assert _sweep()["email"] == 0  # within the grace: its task may still be on its way
    assert _sweep(utcnow() + GRACE + dt.timedelta(seconds=1))["email"] == 1
    mailbox.wait_for(1)
    stored = _stored(OutboxEmail, email.id)
    assert stored.status == OutboxStatus.SENT and stored.attempts == 1
    assert _message_ids(mailbox.messages) == [stored.message_id]
    # Sent rows are never swept, and their task sends nothing.
    assert _sweep(utcnow() + 10 * GRACE)["email"] == 0
    assert outbox.deliver_email_task.call_local(email.id) == "sent"
    assert len(mailbox.messages) == 1


def test_email_sending_past_its_lease_is_sent_again_with_its_message_id(app, mailbox):
    claimed = utcnow() - 2 * LEASE
    email = _email(
        status=OutboxStatus.SENDING,
        attempts=1,
        message_id="<crashed-1@billing.local>",
        claimed_at=claimed,
        lease_until=claimed + LEASE,
    )
    assert _sweep()["email"] == 1
    mailbox.wait_for(1)
    stored = _stored(OutboxEmail, email.id)
    assert stored.status == OutboxStatus.SENT and stored.attempts == 2
    assert _message_ids(mailbox.messages) == ["<crashed-1@billing.local>"]
    assert _sweep(utcnow() + 10 * LEASE)["email"] == 0
    assert len(mailbox.messages) == 1


def test_email_within_its_lease_is_left_to_its_worker(app, mailbox):
    now = utcnow()
    email = _email(
        status=OutboxStatus.SENDING,
        attempts=1,
        message_id="<busy@billing.local>",
        claimed_at=now,
        lease_until=now + LEASE,
    )
    assert _sweep()["email"] == 0
    # A second copy of its task (a retry, a duplicate) does not send it either.
    assert outbox.deliver_email_task.call_local(email.id) == "sending"
    assert mailbox.messages == []
    assert _stored(OutboxEmail, email.id).status == OutboxStatus.SENDING
    # Once the lease is over, the worker is presumed dead and the e-mail goes out.
    assert _sweep(now + LEASE + dt.timedelta(seconds=1))["email"] == 1
    assert _message_ids(mailbox.wait_for(1)) == ["<busy@billing.local>"]


def test_failed_attempt_is_left_to_the_queues_retry_until_it_is_overdue(app, mailbox):
    working = app.config["SMTP_URL"]
    app.config["SMTP_URL"] = "smtp://127.0.0.1:1"  # nothing listens there
    email = _email()
    with pytest.raises(OSError):
        outbox.deliver(db.session, email.id)
    db.session.expire_all()
    stored = _stored(OutboxEmail, email.id)
    assert stored.status == OutboxStatus.QUEUED and stored.attempts == 1
    # The first retry is due after 30 s; the sweeper waits that plus its grace.
    assert stored.lease_until >= utcnow() + GRACE + dt.timedelta(seconds=25)
    assert _sweep(utcnow() + GRACE)["email"] == 0
    app.config["SMTP_URL"] = working
    assert _sweep(stored.lease_until + dt.timedelta(seconds=1))["email"] == 1
    mailbox.wait_for(1)
    stored = _stored(OutboxEmail, email.id)
    assert stored.status == OutboxStatus.SENT and stored.attempts == 2


def test_a_sweep_queues_a_waiting_email_once_per_grace(app_config, mailbox):
    """Behind a long queue a row waits past the grace: each sweep must not add a copy."""
    from portal import create_app

    app_config["QUEUE_IMMEDIATE"] = False
    app = create_app(app_config)
    with app.app_context():
        queue.flush()
        _email()
        later = utcnow() + GRACE + dt.timedelta(seconds=1)
        assert _sweep(later)["email"] == 1
        assert _sweep(later + dt.timedelta(seconds=59))["email"] == 0
        assert queue.pending_count() == 1
        assert _sweep(later + GRACE + dt.timedelta(seconds=1))["email"] == 1
        assert queue.pending_count() == 2
        # Both copies run; the e-mail goes out once.
        while (task := queue.dequeue()) is not None:
            queue.execute(task)
        assert len(mailbox.wait_for(1)) == 1
        db.session.remove()


def test_last_attempt_lost_with_its_worker_is_given_up(app, mailbox):
    claimed = utcnow() - 2 * LEASE
    email = _email(
        status=OutboxStatus.SENDING,
        attempts=outbox.MAX_ATTEMPTS,
        message_id="<poison@billing.local>",
        claimed_at=claimed,
        lease_until=claimed + LEASE,
    )
    assert _sweep()["email"] == 1
    stored = _stored(OutboxEmail, email.id)
    assert stored.status == OutboxStatus.FAILED and stored.attempts == outbox.MAX_ATTEMPTS
    assert mailbox.messages == []


def test_message_id_and_claim_are_committed_before_smtp_sees_the_message(app, database_url):
    """The SMTP server looks at the database (another connection) when the message arrives."""
    seen: list[tuple[str, str | None, str]] = []
    engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)

    class Inspecting:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            message = message_from_bytes(envelope.content, policy=policy.default)
            with engine.connect() as conn:
                status, message_id = conn.execute(
                    sa.text("SELECT status, message_id FROM email_outbox")
                ).one()
            seen.append((status, message_id, message["Message-ID"]))
            await asyncio.sleep(0)
            return "250 OK"

    controller = Controller(Inspecting(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        app.config["SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
        email = _email()
        assert outbox.deliver(db.session, email.id) == OutboxStatus.SENT
    finally:
        controller.stop()
        engine.dispose()
    [(status, committed_id, header_id)] = seen
    assert status == "sending"
    assert committed_id is not None and committed_id == header_id


def test_crash_after_smtp_accepted_sends_a_duplicate_with_the_same_message_id(
    app, mailbox, monkeypatch
):
    """The one window the README names: accepted by SMTP, not yet marked sent."""
    email = _email()

    def die(session, email_id):
        raise WorkerDied

    monkeypatch.setattr(outbox, "_mark_sent", die)
    with pytest.raises(WorkerDied):
        outbox.deliver_email_task.call_local(email.id)
    monkeypatch.undo()
    mailbox.wait_for(1)
    stored = _stored(OutboxEmail, email.id)
    assert stored.status == OutboxStatus.SENDING
    assert _sweep()["email"] == 0  # its lease runs: the worker might still be busy
    assert _sweep(stored.lease_until + dt.timedelta(seconds=1))["email"] == 1
    mailbox.wait_for(2)
    assert _message_ids(mailbox.messages) == [stored.message_id, stored.message_id]
    assert _stored(OutboxEmail, email.id).status == OutboxStatus.SENT


def test_crash_before_smtp_accepted_sends_it_once(app, mailbox, monkeypatch):
    email = _email()

    def die(*args, **kwargs):
        raise WorkerDied

    monkeypatch.setattr(outbox, "smtp_connection", die)
    with pytest.raises(WorkerDied):
        outbox.deliver_email_task.call_local(email.id)
    monkeypatch.undo()
    stored = _stored(OutboxEmail, email.id)
    assert stored.status == OutboxStatus.SENDING and stored.message_id
    assert _sweep(stored.lease_until + dt.timedelta(seconds=1))["email"] == 1
    assert _message_ids(mailbox.wait_for(1)) == [stored.message_id]


def test_sweep_command_runs_every_sweep_once(app, runner, mailbox):
    email = _email(created_at=utcnow() - 2 * GRACE)
    result = runner.invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    assert "email: 1 re-enqueued" in result.output
    assert "webhook: 0 re-enqueued" in result.output
    mailbox.wait_for(1)
    db.session.expire_all()
    assert _stored(OutboxEmail, email.id).status == OutboxStatus.SENT


def test_sweeper_is_a_periodic_task_of_the_worker(app, mailbox):
    from huey.api import PeriodicTask

    from portal.ops.sweeper import sweep_task

    task = sweep_task.s()
    assert isinstance(task, PeriodicTask)
    every_minute = [dt.datetime(2026, 12, 2, 10, minute) for minute in range(60)]
    assert all(task.validate_datetime(moment) for moment in every_minute)
    # What the consumer's scheduler enqueues each minute:
    assert task.name in {periodic.name for periodic in queue.read_periodic(every_minute[7])}
    _email(created_at=utcnow() - 2 * GRACE)
    assert sweep_task.call_local()["email"] == 1
    assert len(mailbox.wait_for(1)) == 1


def test_one_failing_kind_does_not_stop_the_others(app, mailbox, monkeypatch):
    from portal.ops import sweeper

    def broken(session, window):
        raise RuntimeError("broken sweep")

    monkeypatch.setitem(sweeper._SWEEPS, "webhook", broken)
    _email(created_at=utcnow() - 2 * GRACE)
    result = sweep_now()
    assert result.failed == ["webhook"] and result.counts["email"] == 1


# -- webhook events -------------------------------------------------------------------------


class CountingProvider:
    """A provider whose every event changes something; records what it handled."""

    slug = "stripe"

    def __init__(self):
        self.handled: list[int] = []

    def handle_event(self, session, row):
        self.handled.append(row.id)
        return True


@pytest.fixture
def provider(monkeypatch) -> CountingProvider:
    provider = CountingProvider()
    monkeypatch.setattr(webhooks, "get_provider", lambda slug: provider)
    return provider


def _event(**values) -> ProviderEvent:
    event = ProviderEvent(
        provider="stripe",
        event_id=f"evt_{uuid.uuid4().hex}",
        event_type="payment_intent.succeeded",
        payload={},
        **values,
    )
    db.session.add(event)
    db.session.commit()
    return event


def test_event_received_past_the_grace_is_processed_once(app, provider):
    event = _event()
    assert _sweep()["webhook"] == 0
    assert _sweep(utcnow() + GRACE + dt.timedelta(seconds=1))["webhook"] == 1
    assert provider.handled == [event.id]
    stored = _stored(ProviderEvent, event.id)
    assert stored.status == ProviderEventStatus.PROCESSED and stored.attempts == 1
    assert _sweep(utcnow() + 10 * GRACE)["webhook"] == 0
    assert webhooks.process_event_task.call_local(event.id) == "processed"
    assert provider.handled == [event.id]


def test_failed_event_waits_for_its_retries_then_gets_one_attempt_per_sweep(app, provider):
    event = _event(status=ProviderEventStatus.FAILED, attempts=2, last_error="hiccup")
    retries_over = event.received_at + dt.timedelta(seconds=webhooks.RETRIES_SPAN) + GRACE
    assert _sweep(retries_over - dt.timedelta(seconds=1))["webhook"] == 0
    assert provider.handled == []
    assert _sweep(retries_over + dt.timedelta(seconds=1))["webhook"] == 1
    assert provider.handled == [event.id]
    stored = _stored(ProviderEvent, event.id)
    assert stored.status == ProviderEventStatus.PROCESSED and stored.attempts == 3


def test_event_out_of_attempts_is_not_swept(app, provider):
    _event(status=ProviderEventStatus.FAILED, attempts=webhooks.MAX_ATTEMPTS)
    assert _sweep(utcnow() + dt.timedelta(days=1))["webhook"] == 0
    assert provider.handled == []


def test_processed_and_ignored_events_are_never_processed_again(app, provider):
    for status in (ProviderEventStatus.PROCESSED, ProviderEventStatus.IGNORED):
        event = _event(status=status, attempts=1)
        assert webhooks.process_event(db.session, event.id) == status
    assert _sweep(utcnow() + dt.timedelta(days=1))["webhook"] == 0
    assert provider.handled == []
