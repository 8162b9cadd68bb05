"""The job queue: SQLite storage by default, Redis when REDIS_URL is set; e-mail delivery."""

from __future__ import annotations

import uuid

import pytest
import redis
import sqlalchemy as sa
from huey.storage import RedisStorage, SqliteStorage

from portal import create_app
from portal.extensions import db, queue
from portal.notifications.models import OutboxEmail, OutboxStatus
from portal.notifications.outbox import MAX_ATTEMPTS, deliver, deliver_email_task, queue_email
from tests.conftest import REDIS_TEST_URL


def _queue_one_email(session, key: str = "test:1") -> OutboxEmail:
    email = queue_email(
        session,
        template="password_reset",
        to=["someone@example.com"],
        dedupe_key=key,
        context={
            "user": type("U", (), {"name": "Sam"})(),
            "reset_url": "http://x/r",
            "valid_minutes": 60,
        },
    )
    return email


def test_default_storage_is_a_sqlite_file(app_config):
    app_config["QUEUE_IMMEDIATE"] = False
    create_app(app_config)
    assert isinstance(queue.storage, SqliteStorage)


def test_email_is_queued_in_sqlite_and_delivered_by_a_worker(app_config, mailbox):
    app_config["QUEUE_IMMEDIATE"] = False
    app = create_app(app_config)
    with app.app_context():
        email = _queue_one_email(db.session)
        db.session.commit()
        assert email.status == OutboxStatus.QUEUED
        assert mailbox.messages == []
        # What the consumer does: take the task from storage and run it.
        task = queue.dequeue()
        assert task is not None
        queue.execute(task)
        db.session.expire_all()
        assert db.session.get(OutboxEmail, email.id).status == OutboxStatus.SENT
        assert mailbox.wait_for(1)[0]["Subject"] == "Reset your billing portal password"
        db.session.remove()


def _redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=1).ping()
    except redis.RedisError:
        return False


@pytest.mark.skipif(not _redis_available(), reason="Redis is not running")
def test_redis_queue_is_shared_by_workers(app_config, mailbox):
    app_config.update(
        QUEUE_IMMEDIATE=False, REDIS_URL=REDIS_TEST_URL, RATELIMIT_STORAGE_URI=REDIS_TEST_URL
    )
    app = create_app(app_config)
    assert isinstance(queue.storage, RedisStorage)
    queue.flush()
    with app.app_context():
        email = _queue_one_email(db.session, key=f"redis:{uuid.uuid4()}")
        db.session.commit()
        assert queue.pending_count() == 1
        # A second "worker" process would see the same queue: a fresh client reads it.
        raw = redis.Redis.from_url(REDIS_TEST_URL)
        assert any(b"portal" in key for key in raw.keys())
        queue.execute(queue.dequeue())
        assert queue.pending_count() == 0
        db.session.expire_all()
        assert db.session.get(OutboxEmail, email.id).status == OutboxStatus.SENT
        db.session.remove()
    queue.flush()


def test_rolled_back_email_is_never_queued(session, mailbox):
    _queue_one_email(session)
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0
    assert mailbox.wait_for(1, timeout=0.3) == []


def test_same_dedupe_key_queues_one_email(session, mailbox):
    first = _queue_one_email(session, key="once")
    second = _queue_one_email(session, key="once")
    session.commit()
    assert first.id == second.id
    assert len(mailbox.wait_for(1)) == 1


def test_sent_email_is_never_sent_twice(session, mailbox):
    email = _queue_one_email(session)
    session.commit()
    mailbox.wait_for(1)
    assert deliver_email_task.call_local(email.id) == "sent"
    assert len(mailbox.messages) == 1


def test_smtp_failure_is_retried_then_marked_failed(app, session, mailbox):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:1"  # nothing listens there
    email = _queue_one_email(session)
    session.commit()  # the immediate-mode task fails and huey keeps the retries
    session.expire_all()
    stored = session.get(OutboxEmail, email.id)
    assert stored.attempts >= 1 and stored.last_error
    while stored.status == OutboxStatus.QUEUED:
        try:
            deliver(session, email.id)
        except OSError:
            pass
        session.expire_all()
        stored = session.get(OutboxEmail, email.id)
    assert stored.status == OutboxStatus.FAILED
    assert stored.attempts == MAX_ATTEMPTS
    assert mailbox.messages == []
