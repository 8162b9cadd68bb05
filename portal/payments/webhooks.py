"""The webhook inbox: store each verified event once, process it on the queue with retries."""

from __future__ import annotations

import datetime as dt
import functools
import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.db import lock, utcnow
from portal.extensions import db, queue
from portal.ops.after_commit import after_commit
from portal.ops.sweeper import SweepWindow
from portal.payments.models import ProviderEvent, ProviderEventStatus
from portal.payments.providers import Provider, UnknownProvider, WebhookEvent, get_provider

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6


def store_events(
    session: Session, provider: Provider, events: list[WebhookEvent]
) -> list[ProviderEvent]:
    """Insert the events not seen before; queue their processing after commit.

    A duplicate (same provider and event id) hits the unique key and is skipped, so a
    replayed delivery changes nothing.
    """
    stored = []
    for item in events:
        seen = session.scalar(
            sa.select(ProviderEvent.id).where(
                ProviderEvent.provider == provider.slug, ProviderEvent.event_id == item.event_id
            )
        )
        if seen is not None:
            continue
        row = ProviderEvent(
            provider=provider.slug,
            event_id=item.event_id[:200],
            event_type=item.event_type[:100],
            payload=item.payload,
            status=ProviderEventStatus.RECEIVED,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # a concurrent delivery of the same event won
            continue
        stored.append(row)
        row_id = row.id
        after_commit(session, functools.partial(process_event_task, row_id))
    return stored


#: Statuses after which an event is never processed again.
DONE = (ProviderEventStatus.PROCESSED, ProviderEventStatus.IGNORED)
#: Seconds before the first retry of a failed event; each later wait doubles.
RETRY_DELAY = 30
RETRY_BACKOFF = 2
#: Seconds from an event's first attempt until its last queued retry is due.
RETRIES_SPAN = sum(RETRY_DELAY * RETRY_BACKOFF**n for n in range(MAX_ATTEMPTS - 1))


def process_event(session: Session, row_id: int) -> ProviderEventStatus:
    """Apply one stored event through its provider; commits.

    Under the row's lock, re-checked inside it: a copy of the task running at the same
    time (a retry, or one the sweeper queued) waits and then finds the event done. The
    event's effects and its new status commit together, so a worker that dies here leaves
    the event as it was, for the sweeper to queue again.

    :raise Exception: whatever the provider raised, after recording it (the queue retries).
    """
    row = session.get(ProviderEvent, row_id)
    if row is None or row.status in DONE:
        return row.status if row else ProviderEventStatus.IGNORED
    lock(session, row)
    if row.status in DONE:
        status = row.status
        session.rollback()
        return status
    row.attempts += 1
    attempts = row.attempts
    try:
        provider = get_provider(row.provider)
        changed = provider.handle_event(session, row)
    except UnknownProvider:
        row.status = ProviderEventStatus.IGNORED
        row.processed_at = utcnow()
        session.commit()
        return row.status
    except Exception as exc:
        session.rollback()
        row = lock(session, session.get_one(ProviderEvent, row_id))
        if row.status in DONE:  # another copy processed it meanwhile
            status = row.status
            session.rollback()
            return status
        row.attempts = attempts
        row.status = ProviderEventStatus.FAILED
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        session.commit()
        if attempts >= MAX_ATTEMPTS:
            return row.status
        raise
    row.status = ProviderEventStatus.PROCESSED if changed else ProviderEventStatus.IGNORED
    row.processed_at = utcnow()
    row.last_error = None
    session.commit()
    return row.status


@queue.app_task(retries=MAX_ATTEMPTS - 1, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF)
def process_event_task(row_id: int) -> str:
    """Queue task: process one inbox event in its own session."""
    with Session(db.engine) as session:
        return str(process_event(session, row_id))


def sweep_inbox(session: Session, window: SweepWindow) -> int:
    """Queue again the events whose processing a dead worker took; returns how many.

    Processing commits with the event's status, so a lost task leaves the event
    ``received`` (never processed) or ``failed`` with attempts left. The inbox records no
    time of the last attempt: a received event is queued again once it is older than the
    grace, and a failed one once even its last queued retry would be overdue, then for one
    attempt per sweep (its attempts still end at ``MAX_ATTEMPTS``).
    """
    received = list(
        session.scalars(
            sa.select(ProviderEvent.id)
            .where(
                ProviderEvent.status == ProviderEventStatus.RECEIVED,
                ProviderEvent.received_at < window.queued_before,
            )
            .order_by(ProviderEvent.id)
            .limit(window.limit)
        )
    )
    failed = list(
        session.scalars(
            sa.select(ProviderEvent.id)
            .where(
                ProviderEvent.status == ProviderEventStatus.FAILED,
                ProviderEvent.attempts < MAX_ATTEMPTS,
                ProviderEvent.received_at
                < window.queued_before - dt.timedelta(seconds=RETRIES_SPAN),
            )
            .order_by(ProviderEvent.id)
            .limit(window.limit)
        )
    )
    session.rollback()
    for row_id in received:
        process_event_task(row_id)
    for row_id in failed:
        queue.enqueue(process_event_task.s(row_id, retries=0))
    return len(received) + len(failed)
