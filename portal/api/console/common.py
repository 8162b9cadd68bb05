"""What every console operation needs: who acts (the admin token) and the 404 of an unknown
company or object, in the surface's error shape."""

from __future__ import annotations

from flask import g, request

from portal.api.core import ApiError, error_entry, request_id
from portal.extensions import db
from portal.ops.audit import Actor
from portal.tenancy.models import Tenant
from portal.tenancy.queries import tenant_by_public_id


def token_actor() -> Actor:
    """The admin token of this request as the actor of its audit entries."""
    token = g.get("api_token")
    return Actor(
        label=f"api-token:{token.prefix}" if token else "api",
        token_id=token.id if token else None,
        ip_address=request.remote_addr,
        request_id=request.headers.get("X-Request-id") or request_id(),
    )


def not_found(loc: list[str | int], what: str, status: int = 404) -> ApiError:
    """``what`` is unknown at ``loc`` (a path parameter, or a reference in the body)."""
    return ApiError(status, [error_entry(loc, f"{what} not found.", "not_found")])


def company_or_404(company_uid: str) -> Tenant:
    """The company of the path, archived ones too; 404 for an unknown or malformed uid."""
    tenant = tenant_by_public_id(db.session, company_uid)
    if tenant is None:
        raise not_found(["path", "companyUid"], "Company")
    return tenant
