"""Membership roles and what each may do."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """A user's role within one tenant."""

    OWNER = "owner"
    BILLING_ADMIN = "billing_admin"
    VIEWER = "viewer"


#: What each role may do. Viewers see everything and change nothing.
PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.OWNER: frozenset({"view", "manage_billing", "manage_tokens", "manage_members"}),
    Role.BILLING_ADMIN: frozenset({"view", "manage_billing", "manage_tokens"}),
    Role.VIEWER: frozenset({"view"}),
}


def role_allows(role: Role | str | None, permission: str) -> bool:
    """Whether ``role`` grants ``permission``."""
    if role is None:
        return False
    return permission in PERMISSIONS[Role(role)]
