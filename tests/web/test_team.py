"""The Team page, the admin company page's invitations, and the invitation link's page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from portal.db import utcnow
from portal.extensions import db
from portal.ops.audit import Actor
from portal.tenancy.invitations import invite, revoke_invitation
from portal.tenancy.models import Invitation, Membership, User
from portal.tenancy.roles import Role
from tests.factories.tenancy import UserFactory

LINK = re.compile(r"http://localhost(/invitations/[\w.\-]+)")


def _link_path(mailbox, index: int = -1) -> str:
    message = mailbox.wait_for(abs(index) if index < 0 else index + 1)[index]
    [path] = set(LINK.findall(message.get_body(preferencelist=("plain",)).get_content()))
    return path


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _invite(world, email="nina@example.com", role=Role.VIEWER) -> Invitation:
    invitation = invite(
        db.session, world.a.tenant, email=email, role=role, actor=Actor(label="test")
    )
    db.session.commit()
    return invitation


@pytest.mark.parametrize("role", list(Role))
def test_everyone_sees_the_team_but_only_owners_get_forms(client, auth, world, role):
    _invite(world)
    auth.login(world.a.user(role).email)
    page = client.get("/team")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for user in (world.a.owner, world.a.billing_admin, world.a.viewer):
        assert user.email in html
    assert "nina@example.com" in html and world.b.owner.email not in html
    assert ("<form" in html.split('id="main"')[1].split("<footer")[0]) is (role == Role.OWNER)
    assert ("Send invitation" in html) is (role == Role.OWNER)
    assert 'href="/team" aria-current="page"' in html


def test_owner_invites_from_the_team_page_and_the_mail_arrives(client, auth, world, mailbox):
    auth.login(world.a.owner.email)
    response = client.post(
        "/team/invitations", data={"email": "Nina@Example.com", "role": "viewer"}
    )
    assert response.status_code == 303
    assert "Invitation sent to nina@example.com." in client.get("/team").get_data(as_text=True)
    assert _link_path(mailbox).startswith("/invitations/")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "nope", "role": "viewer"}, "Enter a valid e-mail address."),
        ({"email": "", "role": "viewer"}, "This field is required."),
        ({"email": "x@y.example", "role": "root"}, "Not a valid choice."),
    ],
)
def test_bad_invitations_show_a_field_error_and_write_nothing(client, auth, world, form, message):
    auth.login(world.a.owner.email)
    response = client.post("/team/invitations", data=form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "field__error" in html and message in html
    assert _count(Invitation) == 0


def test_a_member_cannot_be_invited_and_the_error_is_german(client, auth, world, session):
    world.a.owner.locale = "de"
    session.commit()
    auth.login(world.a.owner.email)
    response = client.post(
        "/team/invitations", data={"email": world.a.viewer.email, "role": "viewer"}
    )
    assert "Diese Person ist bereits Mitglied des Unternehmens." in response.get_data(as_text=True)
    assert _count(Invitation) == 0


def test_last_owner_is_refused_with_a_clear_message(client, auth, world):
    auth.login(world.a.owner.email)
    url = f"/team/members/{world.a.owner.public_id}"
    for path, data in ((f"{url}/role", {"role": "viewer"}), (f"{url}/remove", {})):
        assert client.post(path, data=data).status_code == 303
        page = client.get("/team").get_data(as_text=True)
        assert "The company must keep at least one owner" in page
    db.session.expire_all()
    assert (
        _count(Membership, Membership.tenant_id == world.a.tenant.id, Membership.role == Role.OWNER)
        == 1
    )


def test_owner_changes_a_role_removes_and_transfers(client, auth, world, mailbox):
    auth.login(world.a.owner.email)
    assert (
        client.post(
            f"/team/members/{world.a.viewer.public_id}/role", data={"role": "billing_admin"}
        ).status_code
        == 303
    )
    assert client.post(f"/team/members/{world.a.billing_admin.public_id}/remove").status_code == 303
    assert client.post(f"/team/members/{world.a.viewer.public_id}/transfer").status_code == 303
    db.session.expire_all()
    roles = dict(
        db.session.execute(
            sa.select(Membership.user_id, Membership.role).where(
                Membership.tenant_id == world.a.tenant.id
            )
        )
        .tuples()
        .all()
    )
    assert roles == {world.a.owner.id: Role.BILLING_ADMIN, world.a.viewer.id: Role.OWNER}
    assert len(mailbox.wait_for(3)) == 3
    # Now a billing admin: the forms are gone and changes are refused.
    assert client.post(f"/team/members/{world.a.viewer.public_id}/remove").status_code == 403


def test_resend_and_revoke_from_the_team_page(client, auth, world, mailbox):
    invitation = _invite(world)
    first = _link_path(mailbox)
    auth.login(world.a.owner.email)
    assert client.post(f"/team/invitations/{invitation.public_id}/resend").status_code == 303
    second = _link_path(mailbox, 1)
    assert first != second
    assert client.get(first).status_code == 410
    assert client.post(f"/team/invitations/{invitation.public_id}/revoke").status_code == 303
    assert client.get(second).status_code == 410
    again = client.post(f"/team/invitations/{invitation.public_id}/revoke")
    assert again.status_code == 303
    assert "The invitation has been revoked." in client.get("/team").get_data(as_text=True)


# --- the link ----------------------------------------------------------------------------


def test_a_new_person_sets_a_password_and_lands_in_the_portal(client, world, mailbox):
    _invite(world, role=Role.BILLING_ADMIN)
    path = _link_path(mailbox)
    page = client.get(path)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert "Join Alpha Industries" in html and "nina@example.com" in html
    bad = client.post(path, data={"name": "Nina", "password": "short", "confirm": "short"})
    assert bad.status_code == 200 and "field__error" in bad.get_data(as_text=True)
    assert _count(User, User.email == "nina@example.com") == 0
    response = client.post(
        path,
        data={"name": "Nina North", "password": "a long password", "confirm": "a long password"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/"
    overview = client.get("/")
    assert overview.status_code == 200
    assert "Welcome to Alpha Industries." in overview.get_data(as_text=True)
    user = db.session.scalars(sa.select(User).where(User.email == "nina@example.com")).one()
    assert (
        _count(Membership, Membership.user_id == user.id, Membership.role == Role.BILLING_ADMIN)
        == 1
    )
    # Reused: a clear page, nothing new.
    client.post("/logout")
    reused = client.get(path)
    assert reused.status_code == 410
    assert "This invitation has been used" in reused.get_data(as_text=True)
    again = client.post(
        path, data={"name": "X", "password": "a long password", "confirm": "a long password"}
    )
    assert again.status_code == 410
    assert _count(User, User.email == "nina@example.com") == 1


def test_an_existing_user_signs_in_and_joins(client, world, mailbox):
    user = UserFactory(email="known@example.com")
    db.session.commit()
    _invite(world, email="known@example.com")
    path = _link_path(mailbox)
    assert "enter its password to join" in client.get(path).get_data(as_text=True)
    wrong = client.post(path, data={"password": "not the password"})
    assert wrong.status_code == 200 and "The password is wrong." in wrong.get_data(as_text=True)
    assert _count(Membership, Membership.user_id == user.id) == 0
    assert client.post(path, data={"password": "correct horse battery"}).status_code == 303
    assert (
        _count(Membership, Membership.user_id == user.id, Membership.tenant_id == world.a.tenant.id)
        == 1
    )


def test_a_signed_in_user_joins_with_one_click(client, auth, world, mailbox):
    other = world.b.viewer
    invite(db.session, world.a.tenant, email=other.email, role="viewer", actor=Actor(label="t"))
    db.session.commit()
    path = _link_path(mailbox)
    auth.login(other.email)
    assert "Join Alpha Industries" in client.get(path).get_data(as_text=True)
    assert client.post(path).status_code == 303
    assert _count(Membership, Membership.user_id == other.id) == 2


def test_signed_in_as_someone_else_joins_nobody(client, auth, world, mailbox):
    _invite(world)
    path = _link_path(mailbox)
    auth.login(world.b.owner.email)
    page = client.get(path).get_data(as_text=True)
    assert "but this invitation is for nina@example.com" in page
    client.post(
        path, data={"name": "x", "password": "a long password", "confirm": "a long password"}
    )
    assert _count(User, User.email == "nina@example.com") == 0
    assert _count(Membership, Membership.user_id == world.b.owner.id) == 1


@pytest.mark.parametrize(
    ("case", "status", "heading"),
    [
        ("expired", 410, "This invitation has expired"),
        ("revoked", 410, "This invitation was withdrawn"),
        ("tampered", 404, "This invitation link does not work"),
        ("garbage", 404, "This invitation link does not work"),
    ],
)
def test_dead_links_show_why_and_create_nothing(client, world, mailbox, case, status, heading):
    invitation = _invite(world)
    path = _link_path(mailbox)
    if case == "expired":
        invitation.expires_at = utcnow() - dt.timedelta(minutes=1)
        db.session.commit()
    elif case == "revoked":
        revoke_invitation(db.session, world.a.tenant, invitation, actor=Actor(label="t"))
        db.session.commit()
    elif case == "tampered":
        path = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    else:
        path = "/invitations/nonsense"
    users = _count(User)
    for response in (
        client.get(path),
        client.post(
            path, data={"name": "Eve", "password": "a long password", "confirm": "a long password"}
        ),
    ):
        assert response.status_code == status
        assert heading in response.get_data(as_text=True)
    assert _count(User) == users
    assert _count(Membership, Membership.tenant_id == world.a.tenant.id) == 3


def test_dead_link_page_in_german(client, world):
    page = client.get("/invitations/nonsense", headers={"Accept-Language": "de"})
    assert page.status_code == 404
    assert "Dieser Einladungslink funktioniert nicht" in page.get_data(as_text=True)


# --- the admin console ---------------------------------------------------------------------


def test_admin_invites_the_billing_contact_from_the_company_page(client, auth, world, mailbox):
    auth.login(world.admin.email)
    url = f"/admin/companies/{world.a.tenant.public_id}"
    contact = world.a.tenant.billing_profile.billing_email
    page = client.get(url).get_data(as_text=True)
    assert f'value="{contact}"' in page  # suggested
    bad = client.post(f"{url}/invitations", data={"email": "nope", "role": "owner"})
    assert bad.status_code == 200 and "Enter a valid e-mail address." in bad.get_data(as_text=True)
    response = client.post(f"{url}/invitations", data={"email": contact, "role": "owner"})
    assert response.status_code == 303
    invitation = db.session.scalars(sa.select(Invitation)).one()
    assert invitation.email == contact and invitation.role == Role.OWNER
    assert invitation.invited_by_id == world.admin.id
    assert _link_path(mailbox)
    assert client.post(f"{url}/invitations/{invitation.public_id}/resend").status_code == 303
    assert client.post(f"{url}/invitations/{invitation.public_id}/revoke").status_code == 303
    other = f"/admin/companies/{world.b.tenant.public_id}/invitations/{invitation.public_id}/revoke"
    assert client.post(other).status_code == 404
