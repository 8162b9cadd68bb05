"""One effect per team change: 20 concurrent requests at one invitation or one company.

Each race goes through the route a person or a machine uses (the invitation link, the Team
page, the console API); the losers get what a sequential second request gets.
"""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa

from portal.extensions import db
from portal.ops.audit import Actor
from portal.ops.models import AuditLogEntry
from portal.tenancy.invitations import invite
from portal.tenancy.models import Invitation, Membership, TokenKind, User
from portal.tenancy.roles import Role
from portal.tenancy.services import create_api_token
from tests.races.conftest import RACERS, fire, session_cookie

LINK = re.compile(r"http://localhost(/invitations/[\w.\-]+)")
CONSOLE = "/api/v1/organizations/companies"


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _link(world, mailbox, email="racer@example.com") -> str:
    invite(db.session, world.a.tenant, email=email, role="viewer", actor=Actor(label="race"))
    db.session.commit()
    message = mailbox.wait_for(1)[0]
    [path] = set(LINK.findall(message.get_body(preferencelist=("plain",)).get_content()))
    return path


def test_twenty_accepts_of_one_invitation_make_one_account_and_one_membership(app, world, mailbox):
    path = _link(world, mailbox)
    form = {"name": "Racer", "password": "a long password", "confirm": "a long password"}
    answers = fire(app, lambda client, i: client.post(path, data=form))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [303] + [410] * (RACERS - 1), statuses
    assert _count(User, User.email == "racer@example.com") == 1
    user_id = db.session.scalar(sa.select(User.id).where(User.email == "racer@example.com"))
    assert _count(Membership, Membership.user_id == user_id) == 1
    assert _count(AuditLogEntry, AuditLogEntry.action == "invitation.accept") == 1


def test_twenty_accepts_by_a_signed_in_user_make_one_membership(app, client, auth, world, mailbox):
    path = _link(world, mailbox, email=world.b.viewer.email)
    auth.login(world.b.viewer.email)
    answers = fire(app, lambda c, i: c.post(path), cookies=session_cookie(client))
    assert sorted(a.status_code for a in answers) == [303] + [410] * (RACERS - 1)
    assert (
        _count(
            Membership,
            Membership.user_id == world.b.viewer.id,
            Membership.tenant_id == world.a.tenant.id,
        )
        == 1
    )


def test_two_owners_removing_each_other_leave_one_owner(app, client, world, session):
    """Ten racers as each owner remove the other owner: one removal wins, the company keeps
    an owner, and the removed owner's own requests are refused."""
    membership = session.scalars(
        sa.select(Membership).where(Membership.user_id == world.a.billing_admin.id)
    ).one()
    membership.role = Role.OWNER
    session.commit()
    owners = [world.a.owner, world.a.billing_admin]
    cookies = []
    for owner in owners:
        client.delete_cookie("session")
        client.post("/login", data={"email": owner.email, "password": "correct horse battery"})
        cookies.append(session_cookie(client))

    ids = [str(owner.public_id) for owner in owners]

    def call(racer, i):
        racer.set_cookie("session", cookies[i % 2]["session"])
        return racer.post(f"/team/members/{ids[(i + 1) % 2]}/remove")

    fire(app, call)
    left = session.scalars(
        sa.select(Membership).where(
            Membership.tenant_id == world.a.tenant.id, Membership.role == Role.OWNER
        )
    ).all()
    assert len(left) == 1
    assert _count(AuditLogEntry, AuditLogEntry.action == "membership.remove") == 1


def test_twenty_demotions_of_two_owners_keep_one(app, client, auth, world, session):
    """One owner's twenty requests demote either owner (themselves or the other): the
    demotions that would leave no owner are refused, so one owner stays."""
    membership = session.scalars(
        sa.select(Membership).where(Membership.user_id == world.a.billing_admin.id)
    ).one()
    membership.role = Role.OWNER
    session.commit()
    auth.login(world.a.owner.email)
    cookie = session_cookie(client)
    targets = [str(world.a.owner.public_id), str(world.a.billing_admin.public_id)]

    def call(c, i):
        return c.post(f"/team/members/{targets[i % 2]}/role", data={"role": "viewer"})

    fire(app, call, cookies=cookie)
    assert (
        _count(Membership, Membership.tenant_id == world.a.tenant.id, Membership.role == Role.OWNER)
        == 1
    )


def test_twenty_invites_of_one_address_from_the_console_make_one_invitation(app, world, mailbox):
    _, token = create_api_token(
        db.session, kind=TokenKind.ADMIN, name="race", scopes=["admin:read", "admin:write"]
    )
    db.session.commit()
    url = f"{CONSOLE}/{world.a.tenant.public_id}/invitations"

    def call(client, _):
        return client.post(
            url,
            json={"email": "same@example.com", "role": "viewer"},
            headers={"Authorization": f"Bearer {token}", "X-Request-id": str(uuid.uuid4())},
        )

    answers = fire(app, call)
    assert sorted(a.status_code for a in answers) == [201] + [409] * (RACERS - 1)
    assert _count(Invitation, Invitation.email == "same@example.com") == 1
    assert len(mailbox.wait_for(1)) == 1
