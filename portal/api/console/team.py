"""Console operations of a company's invitations: invite, list, read, resend, revoke.

Declared on the console surface (``views.api``): the same envelope, errors, X-Request-id
idempotency and OpenAPI as the company's other operations. Every change goes through
``tenancy/invitations.py``, the services the admin page and the Team page call. The link
itself is only ever e-mailed: no answer carries it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from flask import Response, url_for
from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from portal.api.console.common import company_or_404, not_found, token_actor
from portal.api.console.envelope import (
    action,
    one,
    whole_collection,
)
from portal.api.console.query import NO_NUL
from portal.api.console.schemas import ActionResponse, CollectionResponse, ResourceResponse
from portal.api.console.views import api
from portal.api.core import ApiError, error_entry
from portal.extensions import db
from portal.tenancy.errors import TeamRefused
from portal.tenancy.invitations import (
    company_invitations,
    find_invitation,
    invite,
    resend_invitation,
    revoke_invitation,
    status_of,
)
from portal.tenancy.models import Invitation, Tenant

TAGS = ["Invitations"]
STATUS = {"pending": "Pending", "accepted": "Accepted", "revoked": "Revoked", "expired": "Expired"}
#: Refusals about a field of the request: 400 there; the rest are about state: 409.
FIELD_CODES = {"invalid_email", "invalid_role"}
RoleName = Literal["owner", "billing_admin", "viewer"]


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[
        StrictStr,
        StringConstraints(min_length=1, max_length=254, pattern=NO_NUL),
        Field(json_schema_extra={"format": "email"}),
    ]
    role: RoleName = Field(description="What the invitee may do once they joined.")


class InvitationResource(BaseModel):
    invitationUid: str = Field(json_schema_extra={"format": "uuid"})
    companyUid: str = Field(json_schema_extra={"format": "uuid"})
    email: str
    role: RoleName
    status: Literal["Pending", "Accepted", "Revoked", "Expired"]
    invitedBy: str
    createdAt: dt.datetime
    expiresAt: dt.datetime = Field(description="When the current link stops working.")
    acceptedAt: dt.datetime | None
    revokedAt: dt.datetime | None
    resendCount: int


class InvitationQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["Pending", "Accepted", "Revoked", "Expired"] | None = Field(
        None, description="Only invitations in this state (default: all)."
    )


InvitationCollection = CollectionResponse[InvitationResource]
InvitationAnswer = ResourceResponse[InvitationResource]
InvitationAction = ActionResponse[InvitationResource]


def team_refused(exc: TeamRefused) -> ApiError:
    """A refused invitation change: 400 at the field at fault, 409 for the company's or the
    invitation's state (a member already, one pending, accepted, revoked, archived)."""
    if exc.code in FIELD_CODES:
        return ApiError(400, [error_entry(["body", exc.field or ""], exc.message, exc.code)])
    return ApiError(409, [error_entry(["body"], exc.message, exc.code)])


RAISES: dict[type[Exception], Any] = {TeamRefused: team_refused}


def invitation_resource(invitation: Invitation, tenant: Tenant) -> dict[str, Any]:
    """The console's view of an invitation (never its link)."""
    return {
        "invitationUid": str(invitation.public_id),
        "companyUid": str(tenant.public_id),
        "email": invitation.email,
        "role": invitation.role.value,
        "status": STATUS[status_of(invitation)],
        "invitedBy": invitation.invited_by_label,
        "createdAt": invitation.created_at,
        "expiresAt": invitation.expires_at,
        "acceptedAt": invitation.accepted_at,
        "revokedAt": invitation.revoked_at,
        "resendCount": invitation.resend_count,
    }


def _invitation(tenant: Tenant, invitation_uid: str) -> Invitation:
    invitation = find_invitation(db.session, tenant, invitation_uid)
    if invitation is None:
        raise not_found(["path", "invitationUid"], "Invitation")
    return invitation


@api.operation(
    "GET",
    "/<companyUid>/invitations",
    "Get Invitations of Company",
    query=InvitationQuery,
    response=InvitationCollection,
    tags=TAGS,
    errors=(404,),
)
def get_invitations(companyUid: str, query: InvitationQuery):
    """The company's invitations, newest first, with their state; ``status`` keeps one."""
    tenant = company_or_404(companyUid)
    rows = [invitation_resource(i, tenant) for i in company_invitations(db.session, tenant)]
    if query.status:
        rows = [row for row in rows if row["status"] == query.status]
    return whole_collection(rows)


@api.operation(
    "POST",
    "/<companyUid>/invitations",
    "Invite to Company",
    body=InvitationCreate,
    response=InvitationAction,
    status=201,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def post_invitation(companyUid: str, body: InvitationCreate):
    """Invite an e-mail address with a role: the invitee gets an e-mail (in their language)
    with a single-use link that expires after ``INVITATION_MAX_AGE_DAYS`` (7). 400 for an
    invalid address; 409 when the address is a member already, has a pending invitation
    (resend that one), or the company is archived. Nothing is written then."""
    tenant = company_or_404(companyUid)
    invitation = invite(db.session, tenant, email=body.email, role=body.role, actor=token_actor())
    response: Response = action(invitation_resource(invitation, tenant))
    response.status_code = 201
    response.headers["Location"] = url_for(
        "api_console.get_invitation",
        companyUid=tenant.public_id,
        invitationUid=invitation.public_id,
    )
    return response


@api.operation(
    "GET",
    "/<companyUid>/invitations/<invitationUid>",
    "Get Invitation",
    response=InvitationAnswer,
    tags=TAGS,
    errors=(404,),
)
def get_invitation(companyUid: str, invitationUid: str):
    """One invitation of the company (another company's is 404)."""
    tenant = company_or_404(companyUid)
    return one(invitation_resource(_invitation(tenant, invitationUid), tenant), [])


@api.operation(
    "POST",
    "/<companyUid>/invitations/<invitationUid>/resend",
    "Resend Invitation",
    response=InvitationAction,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def resend_invitation_operation(companyUid: str, invitationUid: str):
    """E-mail the invitation again with a new link and a new expiry; the old link stops
    working. 409 for an accepted or revoked invitation."""
    tenant = company_or_404(companyUid)
    invitation = _invitation(tenant, invitationUid)
    resend_invitation(db.session, tenant, invitation, actor=token_actor())
    return action(invitation_resource(invitation, tenant))


@api.operation(
    "DELETE",
    "/<companyUid>/invitations/<invitationUid>",
    "Revoke Invitation",
    response=InvitationAction,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def delete_invitation(companyUid: str, invitationUid: str):
    """Withdraw the invitation: its link never works again. 409 when it was accepted or
    revoked already."""
    tenant = company_or_404(companyUid)
    invitation = _invitation(tenant, invitationUid)
    revoke_invitation(db.session, tenant, invitation, actor=token_actor())
    return action(invitation_resource(invitation, tenant))
