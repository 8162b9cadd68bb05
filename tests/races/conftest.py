"""Races: many requests at once at one object, each on its own connection.

Every test here fires ``RACERS`` requests (threads, each with its own test client, app
context, database session and connection) released together by a barrier, then checks
that exactly one took effect, and ends with ``check-ledger`` finding no difference.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from portal.extensions import db
from portal.ledger.reconciliation import reconcile

#: Concurrent requests per race.
RACERS = 20


def fire(
    app: Any,
    call: Callable[[Any, int], Any],
    *,
    racers: int = RACERS,
    cookies: dict[str, str] | None = None,
) -> list[Any]:
    """Run ``call(client, i)`` in ``racers`` threads at once; returns their results in order.

    An exception in a racer is raised here once all have finished: a racer never fails
    silently.
    """
    db.session.commit()  # nothing of the test's own transaction may hold a lock
    barrier = threading.Barrier(racers)
    results: list[Any] = [None] * racers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        client = app.test_client()
        for name, value in (cookies or {}).items():
            client.set_cookie(name, value)
        barrier.wait()
        try:
            results[i] = call(client, i)
        except BaseException as exc:  # noqa: BLE001 (re-raised below, in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    if errors:
        raise errors[0]
    db.session.expire_all()
    return results


def session_cookie(client: Any) -> dict[str, str]:
    """The signed-in client's session cookie, to sign in the racers' clients too."""
    cookie = client.get_cookie("session")
    assert cookie is not None, "not signed in"
    return {"session": cookie.value}


@pytest.fixture
def ledger_checked(app, runner):
    """After the test: ``flask check-ledger`` exits 0 (and the reconciliation is clean)."""
    yield
    db.session.rollback()
    report = reconcile(db.session)
    assert report.clean, "\n".join(map(str, report.differences))
    result = runner.invoke(args=["check-ledger", "--no-record"])
    assert result.exit_code == 0, result.output
