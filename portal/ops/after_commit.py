"""Run side effects (enqueueing tasks) only after the transaction that caused them commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "portal_after_commit"
_BATCHES = "portal_after_commit_batches"


def after_commit(session: Session, callback: Callable[[], Any]) -> None:
    """Call ``callback`` once ``session`` commits; drop it if the session rolls back."""
    session.info.setdefault(_KEY, []).append(callback)


def after_commit_batch(session: Session, callback: Callable[[list], Any], item: Any) -> None:
    """Call ``callback`` once ``session`` commits, with every item given for it until then.

    One call per commit however many items the transaction collected (in the order they
    were given, each once), e.g. one queued task for a batch of invoices instead of one per
    invoice. Dropped, like :func:`after_commit`, if the session rolls back.
    """
    batches = session.info.setdefault(_BATCHES, {})
    items = batches.get(callback)
    if items is None:
        items = batches[callback] = []
        after_commit(session, lambda: callback(list(dict.fromkeys(items))))
    items.append(item)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    callbacks = session.info.pop(_KEY, [])
    session.info.pop(_BATCHES, None)  # a callback's own commit starts new batches
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_callbacks(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the outermost transaction rolled back
        session.info.pop(_KEY, None)
        session.info.pop(_BATCHES, None)
