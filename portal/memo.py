"""Answers kept for the rest of a database transaction, forgotten as soon as it may change.

A request asks some questions several times (whether drafts are shown, the period's usage);
:func:`in_transaction` answers them once. The memo is dropped on every flush, commit,
rollback and ORM statement that writes, and while the session holds unflushed changes it
is not used at all, so an answer never outlives what it was computed from in this session.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

T = TypeVar("T")

#: ``session.info`` key of the memo.
_KEY = "portal_transaction_memo"


def in_transaction(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or its answer from earlier in this transaction under the same key."""
    if session.new or session.dirty or session.deleted:
        return compute()
    memo = session.info.setdefault(_KEY, {})
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _forget(session: Session, *args: object) -> None:
    session.info.pop(_KEY, None)


for _name in ("after_flush", "after_commit", "after_rollback", "after_soft_rollback"):
    event.listen(Session, _name, _forget)


@event.listens_for(Session, "do_orm_execute")
def _forget_on_write(state) -> None:
    if not state.is_select:
        state.session.info.pop(_KEY, None)
