"""The huey queue, configured from the Flask app: SQLite by default, Redis when set."""

from __future__ import annotations

import functools
from typing import Any

from huey import Huey
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage


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
