"""The huey queue, configured from the Flask app: SQLite by default, Redis when set."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from huey import Huey
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


class FlaskHuey(Huey):
    """A huey instance whose storage is chosen by ``init_app`` and whose tasks run in an
    app context.

    Tasks are declared at import time with :meth:`app_task`; the storage (a SQLite file
    beside the database, or Redis when ``REDIS_URL`` is set) is only known once the app
    is configured, so it is swapped in by :meth:`init_app`.
    """

    def __init__(self, name: str):
        super().__init__(name, immediate=False, storage_class=MemoryStorage, utc=True)
        self.flask_app: Any = None

    def init_app(self, app: Any) -> None:
        """Bind the queue to ``app`` and choose its storage."""
        self.flask_app = app
        if app.config.get("REDIS_URL"):
            self.storage_class = RedisStorage
            self.storage_kwargs = {"url": app.config["REDIS_URL"]}
        else:
            self.storage_class = SqliteStorage
            self.storage_kwargs = {"filename": app.config["QUEUE_SQLITE_PATH"]}
        self._immediate = bool(app.config.get("QUEUE_IMMEDIATE"))
        self.storage = self.create_storage()
        app.extensions["queue"] = self

    def app_task(self, **task_options: Any):
        """Declare a task that runs inside the bound app's context."""

        def decorator(func):
            @functools.wraps(func)
            def run_in_app(*args: Any, **kwargs: Any) -> Any:
                from flask import has_app_context

                if has_app_context():
                    return func(*args, **kwargs)
                if self.flask_app is None:
                    raise RuntimeError("queue used before init_app")
                with self.flask_app.app_context():
                    return func(*args, **kwargs)

            return self.task(**task_options)(run_in_app)

        return decorator

    def app_periodic_task(self, validate_datetime: Any, **task_options: Any):
        """Declare a periodic task (run by consumers started with ``--periodic``) that runs
        inside the bound app's context."""

        def decorator(func):
            @functools.wraps(func)
            def run_in_app(*args: Any, **kwargs: Any) -> Any:
                from flask import has_app_context

                if has_app_context():
                    return func(*args, **kwargs)
                if self.flask_app is None:
                    raise RuntimeError("queue used before init_app")
                with self.flask_app.app_context():
                    return func(*args, **kwargs)

            return self.periodic_task(validate_datetime, **task_options)(run_in_app)

        return decorator


def each_in_own_session(
    engine: Any,
    work: Callable[[Session, Any], Any],
    items: Iterable[Any],
    retry_task: Any,
    retry_delay: int,
) -> dict[Any, Any]:
    """The body of a task that carries a batch: ``work(session, item)`` for each item, in a
    session (and transaction) of its own.

    An item that fails is logged and handed to ``retry_task`` (a one-item task with its
    own retries) after ``retry_delay`` seconds, so one failure neither loses nor repeats
    the others. If even that cannot be queued, the error is raised and the queue retries
    the whole batch: ``work`` must be idempotent.
    """
    results: dict[Any, Any] = {}
    for item in items:
        try:
            with Session(engine) as session:
                results[item] = work(session, item)
        except Exception:
            log.exception("%s failed for %r; retrying it alone", work.__name__, item)
            retry_task.schedule((item,), delay=retry_delay)
            results[item] = "retrying"
    return results
