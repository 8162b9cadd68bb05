"""The webhook inbox: store each verified event once, process it on the queue with retries."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.extensions import db, queue
from portal.ops.after_commit import after_commit
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
        after_commit(session, lambda row_id=row_id: process_event_task(row_id))
    return stored


def process_event(session: Session, row_id: int) -> ProviderEventStatus:
    """Apply one stored event through its provider; commits.

    :raise Exception: whatever the provider raised, after recording it (the queue retries).
    """
    row = session.get(ProviderEvent, row_id, with_for_update=True)
    if row is None or row.status in (ProviderEventStatus.PROCESSED, ProviderEventStatus.IGNORED):
        return row.status if row else ProviderEventStatus.IGNORED
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
        row = session.get(ProviderEvent, row_id)
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


@queue.app_task(retries=MAX_ATTEMPTS - 1, retry_delay=30, retry_backoff=2)
def process_event_task(row_id: int) -> str:
    """Queue task: process one inbox event in its own session."""
    with Session(db.engine) as session:
        return str(process_event(session, row_id))
