"""Invitations: invite, resend, revoke, list and accept, with the e-mail over real SMTP."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from portal.db import utcnow
from portal.extensions import db
from portal.ops.audit import Actor
from portal.ops.models import AuditLogEntry
from portal.tenancy.errors import InvitationUnusable, TeamRefused, WeakPassword
from portal.tenancy.invitations import (
    accept_as_new_user,
    accept_as_user,
    company_invitations,
    invite,
    pending_invitations,
    resend_invitation,
    resolve_invitation,
    revoke_invitation,
    status_of,
)
from portal.tenancy.models import Invitation, Membership, User
from portal.tenancy.roles import Role
from tests.factories.tenancy import UserFactory

LINK = re.compile(r"http://localhost/invitations/[\w.\-]+")


def _actor(world) -> Actor:
    return Actor(label=world.a.owner.email, user_id=world.a.owner.id)


def _token(message) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    [url] = set(LINK.findall(text))
    return url.rsplit("/", 1)[1]


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _invite(world, email="new.person@example.com", role=Role.VIEWER, **kwargs):
    invitation = invite(
        db.session, world.a.tenant, email=email, role=role, actor=_actor(world), **kwargs
    )
    db.session.commit()
    return invitation


def test_invite_stores_only_a_hash_and_emails_a_link(world, mailbox):
    invitation = _invite(world, email="  New.Person@Example.com ")
    assert invitation.email == "new.person@example.com"
    assert invitation.role == Role.VIEWER
    assert invitation.invited_by_id == world.a.owner.id
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=7)
    [message] = mailbox.wait_for(1)
    assert message["To"] == "new.person@example.com"
    assert "Alpha Industries" in message["Subject"]
    token = _token(message)
    assert invitation.token_hash not in token and len(invitation.token_hash) == 64
    html = message.get_body(preferencelist=("html",)).get_content()
    assert token in html
    assert resolve_invitation(db.session, token).id == invitation.id
    assert pending_invitations(db.session, world.a.tenant) == [invitation]
    assert pending_invitations(db.session, world.b.tenant) == []
    assert _count(AuditLogEntry, AuditLogEntry.action == "invitation.create") == 1


def test_expiry_is_a_setting(app, world, mailbox):
    app.config["INVITATION_MAX_AGE_DAYS"] = 2
    invitation = _invite(world)
    assert invitation.expires_at - invitation.created_at == dt.timedelta(days=2)


@pytest.mark.parametrize(
    ("email", "role", "code", "field"),
    [
        ("", "viewer", "invalid_email", "email"),
        ("not-an-address", "viewer", "invalid_email", "email"),
        ("a@b.example", "root", "invalid_role", "role"),
    ],
)
def test_bad_input_is_refused_at_its_field(world, mailbox, email, role, code, field):
    with pytest.raises(TeamRefused) as refused:
        invite(db.session, world.a.tenant, email=email, role=role, actor=_actor(world))
    assert (refused.value.code, refused.value.field) == (code, field)
    db.session.rollback()
    assert _count(Invitation) == 0


def test_members_and_pending_invitations_are_refused(world, mailbox):
    with pytest.raises(TeamRefused) as member:
        invite(
            db.session,
            world.a.tenant,
            email=world.a.viewer.email.upper(),
            role="viewer",
            actor=_actor(world),
        )
    assert member.value.code == "already_member"
    db.session.rollback()
    _invite(world)
    with pytest.raises(TeamRefused) as pending:
        invite(
            db.session,
            world.a.tenant,
            email="new.person@example.com",
            role="owner",
            actor=_actor(world),
        )
    assert pending.value.code == "invitation_pending"
    db.session.rollback()
    # Another company may invite the same person.
    other = invite(
        db.session,
        world.b.tenant,
        email="new.person@example.com",
        role="viewer",
        actor=Actor(label="admin"),
    )
    assert other.tenant_id == world.b.tenant.id


def test_an_expired_invitation_gives_way_to_a_new_one(world, mailbox):
    old = _invite(world, now=utcnow() - dt.timedelta(days=8))
    assert status_of(old) == "expired"
    new = _invite(world)
    db.session.refresh(old)
    assert old.revoked_at is not None and status_of(new) == "pending"


def test_resend_makes_a_new_link_and_kills_the_old_one(world, mailbox):
    invitation = _invite(world)
    first = _token(mailbox.wait_for(1)[0])
    resend_invitation(db.session, world.a.tenant, invitation, actor=_actor(world))
    db.session.commit()
    second = _token(mailbox.wait_for(2)[1])
    assert first != second and invitation.resend_count == 1
    with pytest.raises(InvitationUnusable) as old:
        resolve_invitation(db.session, first)
    assert (old.value.reason, old.value.status) == ("replaced", 410)
    assert resolve_invitation(db.session, second).id == invitation.id


def test_revoked_invitations_cannot_be_resent_or_revoked_again(world, mailbox):
    invitation = _invite(world)
    token = _token(mailbox.wait_for(1)[0])
    revoke_invitation(db.session, world.a.tenant, invitation, actor=_actor(world))
    db.session.commit()
    for service in (resend_invitation, revoke_invitation):
        with pytest.raises(TeamRefused) as refused:
            service(db.session, world.a.tenant, invitation, actor=_actor(world))
        assert refused.value.code == "invitation_revoked"
        db.session.rollback()
    with pytest.raises(InvitationUnusable) as dead:
        resolve_invitation(db.session, token)
    assert dead.value.reason == "revoked"
    assert pending_invitations(db.session, world.a.tenant) == []
    assert [i.id for i in company_invitations(db.session, world.a.tenant)] == [invitation.id]


def test_a_new_person_accepts_once(world, mailbox):
    _invite(world, role=Role.BILLING_ADMIN)
    token = _token(mailbox.wait_for(1)[0])
    result = accept_as_new_user(
        db.session, token, name="  Nora   New ", password="a long password", locale="de"
    )
    db.session.commit()
    assert result.created_user and result.user.name == "Nora New" and result.user.locale == "de"
    assert result.membership.role == Role.BILLING_ADMIN
    assert result.invitation.accepted_user_id == result.user.id
    with pytest.raises(InvitationUnusable) as reused:
        accept_as_new_user(db.session, token, name="Again", password="a long password")
    assert (reused.value.reason, reused.value.status) == ("used", 410)
    db.session.rollback()
    assert _count(User, User.email == "new.person@example.com") == 1
    assert _count(AuditLogEntry, AuditLogEntry.action == "invitation.accept") == 1


def test_an_existing_user_joins_with_their_account(world, mailbox):
    user = UserFactory(email="known@example.com", locale="de")
    db.session.commit()
    _invite(world, email="known@example.com")
    message = mailbox.wait_for(1)[0]
    # The e-mail is in the user's own language, and asks them to sign in.
    assert "Alpha Industries" in message["Subject"] and "eingeladen" in message["Subject"]
    token = _token(message)
    with pytest.raises(TeamRefused) as wrong:
        accept_as_user(db.session, token, world.b.owner)
    assert wrong.value.code == "wrong_account"
    db.session.rollback()
    with pytest.raises(TeamRefused) as exists:
        accept_as_new_user(db.session, token, name="Dup", password="a long password")
    assert exists.value.code == "account_exists"
    db.session.rollback()
    result = accept_as_user(db.session, token, user)
    db.session.commit()
    assert not result.created_user and result.membership.role == Role.VIEWER
    assert _count(Membership, Membership.user_id == user.id) == 1


def test_a_new_person_gets_the_company_language(world, mailbox):
    world.a.tenant.billing_profile.language = "de"
    db.session.commit()
    invitation = _invite(world)
    assert invitation.language == "de"
    message = mailbox.wait_for(1)[0]
    assert "Einladung annehmen" in message.get_body(preferencelist=("html",)).get_content()


@pytest.mark.parametrize("case", ["expired", "tampered", "garbage", "revoked"])
def test_dead_links_create_nothing(world, mailbox, case):
    invitation = _invite(world)
    token = _token(mailbox.wait_for(1)[0])
    expected = {"expired": "expired", "tampered": "invalid", "garbage": "invalid"}
    if case == "expired":
        invitation.expires_at = utcnow() - dt.timedelta(seconds=1)
    elif case == "tampered":
        token = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    elif case == "garbage":
        token = "not-a-token"
    else:
        revoke_invitation(db.session, world.a.tenant, invitation, actor=_actor(world))
        expected["revoked"] = "revoked"
    db.session.commit()
    users = _count(User)
    with pytest.raises(InvitationUnusable) as dead:
        accept_as_new_user(db.session, token, name="Eve", password="a long password")
    assert dead.value.reason == expected[case]
    db.session.rollback()
    assert _count(User) == users
    assert _count(Membership, Membership.tenant_id == world.a.tenant.id) == 3


def test_weak_password_and_empty_name_create_nothing(world, mailbox):
    _invite(world)
    token = _token(mailbox.wait_for(1)[0])
    with pytest.raises(WeakPassword):
        accept_as_new_user(db.session, token, name="Nora", password="short")
    with pytest.raises(TeamRefused) as name:
        accept_as_new_user(db.session, token, name="   ", password="a long password")
    assert name.value.field == "name"
    db.session.rollback()
    assert _count(User, User.email == "new.person@example.com") == 0


def test_archived_companies_take_no_invitations(world, mailbox):
    world.a.tenant.archived_at = utcnow()
    db.session.commit()
    with pytest.raises(TeamRefused) as refused:
        invite(db.session, world.a.tenant, email="x@y.example", role="viewer", actor=_actor(world))
    assert refused.value.code == "company_archived"
