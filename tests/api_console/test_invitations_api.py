"""Console API: a company's invitations (list, invite, read, resend, revoke) and bad input."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.ops.models import AuditLogEntry
from portal.tenancy.models import Invitation
from tests.api_console.conftest import admin_token

LINK = re.compile(r"http://localhost/invitations/[\w.\-]+")


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _path(world, suffix: str = "") -> str:
    return f"/{world.a.tenant.public_id}/invitations{suffix}"


def test_invite_list_read_resend_revoke(console, world, mailbox, request_id):
    body = {"email": "Api.Person@Example.com", "role": "billing_admin"}
    created = console.post(_path(world), json=body, headers={"X-Request-id": request_id})
    assert created.status_code == 201, created.get_json()
    data = created.get_json()["data"]
    assert data["email"] == "api.person@example.com" and data["status"] == "Pending"
    assert data["role"] == "billing_admin" and data["invitedBy"].startswith("api-token:")
    assert "/invitations/" not in str(data)  # the link travels only by e-mail
    uid = data["invitationUid"]
    assert created.headers["Location"].endswith(f"/invitations/{uid}")
    # The same X-Request-id again: the stored answer, no second invitation or e-mail.
    replay = console.post(_path(world), json=body, headers={"X-Request-id": request_id})
    assert replay.status_code == 201 and replay.headers["X-Idempotent-Replay"] == "true"
    assert _count(Invitation) == 1
    [message] = mailbox.wait_for(1)
    assert LINK.search(message.get_body(preferencelist=("plain",)).get_content())

    listing = console.get(_path(world)).get_json()
    assert [i["invitationUid"] for i in listing["data"]] == [uid]
    assert listing["meta"]["pagingInfo"]["total"] == 1
    assert console.get(_path(world), query_string={"status": "Revoked"}).get_json()["data"] == []
    assert console.get(_path(world, f"/{uid}")).get_json()["data"]["status"] == "Pending"

    resent = console.post(_path(world, f"/{uid}/resend"))
    assert resent.status_code == 200 and resent.get_json()["data"]["resendCount"] == 1
    assert len(mailbox.wait_for(2)) == 2
    revoked = console.delete(_path(world, f"/{uid}"))
    assert revoked.status_code == 200 and revoked.get_json()["data"]["status"] == "Revoked"
    again = console.delete(_path(world, f"/{uid}"))
    assert again.status_code == 409
    assert again.get_json()["errors"][0]["type"] == "invitation_revoked"
    actions = db.session.scalars(sa.select(AuditLogEntry.action).order_by(AuditLogEntry.id)).all()
    assert actions == ["invitation.create", "invitation.resend", "invitation.revoke"]


@pytest.mark.parametrize(
    ("body", "status", "location", "type_"),
    [
        ({"email": "not-an-address", "role": "viewer"}, 400, "body/email", "invalid_email"),
        ({"email": "x@y.example", "role": "root"}, 400, "body/role", None),
        ({"email": "x@y.example"}, 400, "body/role", None),
        ({"email": 5, "role": "viewer"}, 400, "body/email", None),
        ({"email": "x@y.example", "role": "viewer", "extra": 1}, 400, "body/extra", None),
        ({"email": "a\x00@y.example", "role": "viewer"}, 400, "body/email", None),
        ([], 400, "body", None),
    ],
)
def test_bad_input_is_a_400_and_writes_nothing(console, world, body, status, location, type_):
    response = console.post(_path(world), json=body)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["errors"][0]
    assert error["location"] == location
    if type_:
        assert error["type"] == type_
    assert response.get_json()["data"] is None
    assert _count(Invitation) == 0


def test_members_and_pending_invitations_are_409(console, world):
    member = console.post(_path(world), json={"email": world.a.owner.email, "role": "viewer"})
    assert member.status_code == 409
    assert member.get_json()["errors"][0]["type"] == "already_member"
    assert (
        console.post(_path(world), json={"email": "p@x.example", "role": "viewer"}).status_code
        == 201
    )
    pending = console.post(_path(world), json={"email": "P@x.example", "role": "owner"})
    assert pending.status_code == 409
    assert pending.get_json()["errors"][0]["type"] == "invitation_pending"
    assert _count(Invitation) == 1


def test_unknown_company_or_another_companys_invitation_is_404(console, world):
    created = console.post(_path(world), json={"email": "p@x.example", "role": "viewer"})
    uid = created.get_json()["data"]["invitationUid"]
    other = f"/{world.b.tenant.public_id}/invitations/{uid}"
    for response in (
        console.get(other),
        console.post(f"{other}/resend"),
        console.delete(other),
        console.get("/not-a-uuid/invitations"),
        console.get(_path(world, "/not-a-uuid")),
    ):
        assert response.status_code == 404
        assert response.get_json()["errors"][0]["type"] == "not_found"
    assert (
        db.session.get(Invitation, db.session.scalar(sa.select(Invitation.id))).revoked_at is None
    )


def test_read_tokens_cannot_invite_and_tenant_tokens_are_401(console, world):
    read_only = admin_token(("admin:read",))
    refused = console.post(
        _path(world), json={"email": "p@x.example", "role": "viewer"}, token=read_only
    )
    assert refused.status_code == 403
    tenant = console.post(
        _path(world), json={"email": "p@x.example", "role": "viewer"}, token=world.a.token_secret
    )
    assert tenant.status_code == 401
    assert _count(Invitation) == 0


def test_the_operations_are_in_the_openapi_document(console):
    document = console.get("/openapi.json").get_json()
    paths = document["paths"]
    assert set(paths["/api/v1/organizations/companies/{companyUid}/invitations"]) >= {"get", "post"}
    one = paths["/api/v1/organizations/companies/{companyUid}/invitations/{invitationUid}"]
    assert set(one) >= {"get", "delete"}
    assert (
        "post"
        in paths["/api/v1/organizations/companies/{companyUid}/invitations/{invitationUid}/resend"]
    )
