"""The sweeper: background work a dead worker took, found again in the database.

huey takes a task off the queue when a consumer starts it, so a consumer killed in the
middle of a task (``kill -9``, an out-of-memory kill, a lost machine) loses that task, and a
web process killed between its commit and its enqueueing never queues it at all. Every
after-commit task therefore leaves its state in a row: an e-mail is ``queued`` or
``sending``, a webhook event ``received``, a job ``queued`` or ``running`` with the steps it
has counted, an invoice finalized without a collection attempt.

Each package says how to find its own stale rows and registers that with
:func:`register_sweep`, beside the task it recovers. The sweeper runs every registered
sweep every minute on consumers started with ``--periodic`` (also once right after such a
consumer starts), and once with ``flask --app wsgi sweep``. A row still queued after the
grace (``TASK_GRACE_SECONDS``) or claimed past its lease (``TASK_LEASE_SECONDS``) is queued
again. That is safe because every task locks its row, re-checks its state inside the lock
and does nothing for a row that is already done; at worst a re-enqueued copy of a task
that was only slow finds the work done.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from huey import crontab
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.extensions import db, queue

log = logging.getLogger(__name__)

#: Rows one sweep re-enqueues per kind at most (the oldest first); the next sweep goes on.
BATCH_LIMIT = 500


@dataclass(frozen=True)
class SweepWindow:
    """What one sweep considers stale."""

    #: The sweep's clock.
    now: dt.datetime
    #: How long a queued row may wait for its task.
    grace: dt.timedelta
    #: How long a claim belongs to the worker that took it.
    lease: dt.timedelta
    #: Rows re-enqueued per kind at most.
    limit: int = BATCH_LIMIT

    @property
    def queued_before(self) -> dt.datetime:
        """Rows queued before this have waited longer than the grace."""
        return self.now - self.grace

    @classmethod
    def from_config(cls, config: Mapping[str, Any], now: dt.datetime | None = None):
        return cls(
            now=now or utcnow(),
            grace=dt.timedelta(seconds=int(config.get("TASK_GRACE_SECONDS", 300))),
            lease=dt.timedelta(seconds=int(config.get("TASK_LEASE_SECONDS", 300))),
        )


#: ``sweep(session, window) -> rows re-enqueued``; it commits what it changes and queues
#: the tasks after its commit.
Sweep = Callable[[Session, SweepWindow], int]

_SWEEPS: dict[str, Sweep] = {}


def register_sweep(name: str, sweep: Sweep) -> Sweep:
    """Have the sweeper run ``sweep`` (under ``name`` in its counts)."""
    _SWEEPS[name] = sweep
    return sweep


def registered_sweeps() -> dict[str, Sweep]:
    return dict(_SWEEPS)


@dataclass
class SweepResult:
    """Rows re-enqueued per kind, and the kinds whose sweep failed."""

    counts: dict[str, int]
    failed: list[str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def sweep(engine: Any, window: SweepWindow) -> SweepResult:
    """Run every registered sweep, each in a session of its own.

    One kind's failure (logged) does not keep the others from being swept.
    """
    result = SweepResult(counts={}, failed=[])
    for name, run in sorted(_SWEEPS.items()):
        try:
            with Session(engine) as session:
                result.counts[name] = run(session, window)
        except Exception:
            log.exception("sweep of %s failed", name)
            result.failed.append(name)
    if result.total:
        log.warning("sweeper re-enqueued %s", result.counts)
    return result


def sweep_now(now: dt.datetime | None = None) -> SweepResult:
    """One sweep with the app's settings (inside an app context)."""
    from flask import current_app

    return sweep(db.engine, SweepWindow.from_config(current_app.config, now))


@queue.app_periodic_task(crontab(minute="*"))
def sweep_task() -> dict[str, int]:
    """Periodic task (every minute, run by the worker): :func:`sweep_now`.

    Queued like any task, so behind a backlog it runs when the consumer gets to it (huey's
    Redis storage has no priorities); what it recovers waits no longer than the backlog.
    """
    return sweep_now().counts
