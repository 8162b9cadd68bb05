"""Who acted, and the append-only audit log of what operators did.

Every audited service takes the acting :class:`Actor` and appends one entry per change.
Refusals carry a stable ``code`` for the APIs and an English ``message`` that pages
translate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from portal.ops.models import AuditLogEntry


def N_(message: str) -> str:  # noqa: N802 (the gettext "no-op" marker babel extracts)
    """Mark English text for extraction; pages translate it when they show it."""
    return message


@dataclass(frozen=True)
class Actor:
    """Who acts: a person (user id) or a machine (token id), with the request's origin."""

    label: str
    user_id: int | None = None
    token_id: int | None = None
    ip_address: str | None = None
    request_id: str | None = None


class AdminActionRefused(Exception):
    """An admin action that the invoice's state (or the data) does not allow."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        #: Stable machine-readable reason, e.g. ``not_a_draft``.
        self.code = code
        #: English sentence for people; pages show its translation.
        self.message = message


def record_audit(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | None,
    *,
    tenant_id: int | None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditLogEntry:
    """Append one audit entry (the table refuses UPDATE and DELETE)."""
    data: dict[str, Any] = {}
    if before is not None:
        data["before"] = before
    if after is not None:
        data["after"] = after
    entry = AuditLogEntry(
        actor_user_id=actor.user_id,
        actor_token_id=actor.token_id,
        actor_label=actor.label[:254],
        action=action,
        target_type=target_type,
        target_id=target_id,
        tenant_id=tenant_id,
        data=data,
        ip_address=actor.ip_address,
        request_id=actor.request_id,
    )
    session.add(entry)
    session.flush()
    return entry
