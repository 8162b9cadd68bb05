"""Who may see what: the current tenant, role checks and the platform-admin guard."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort, g, redirect, request, session, url_for
from flask_login import current_user

from portal.extensions import db
from portal.tenancy.roles import role_allows
from portal.tenancy.services import memberships_of

TENANT_SESSION_KEY = "tenant_id"


def load_tenant_context() -> None:
    """Set ``g.memberships``, ``g.membership`` and ``g.tenant`` for the logged-in user.

    The tenant comes from the session (the tenant switcher), else the user's first tenant.
    """
    g.memberships = []
    g.membership = None
    g.tenant = None
    if not current_user.is_authenticated:
        return
    g.memberships = memberships_of(db.session, current_user)
    chosen = session.get(TENANT_SESSION_KEY)
    for membership in g.memberships:
        if str(membership.tenant.public_id) == chosen:
            g.membership = membership
            break
    else:
        g.membership = g.memberships[0] if g.memberships else None
    g.tenant = g.membership.tenant if g.membership else None


def tenant_view(permission: str = "view") -> Callable:
    """Require a logged-in member of the current tenant whose role grants ``permission``.

    Anonymous users go to the login page; users without a tenant get 404 (admins go to the
    console); members whose role lacks the permission get 403.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if g.tenant is None:
                if current_user.is_platform_admin:
                    return redirect(url_for("admin.index"))
                abort(404)
            if not role_allows(g.membership.role, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # type: ignore[attr-defined]
        return wrapped

    return decorator


def admin_view(view: Callable) -> Callable:
    """Require a platform admin; anyone else logged in gets 404 (the area is not advertised)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not current_user.is_platform_admin:
            abort(404)
        return view(*args, **kwargs)

    wrapped.admin_only = True  # type: ignore[attr-defined]
    return wrapped


def can(permission: str) -> bool:
    """Template helper: whether the current member may do ``permission``."""
    return g.get("membership") is not None and role_allows(g.membership.role, permission)
