"""The team: roles, removal, ownership transfer; the company always keeps an owner."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.ops.audit import Actor
from portal.ops.models import AuditLogEntry
from portal.tenancy.errors import TeamRefused
from portal.tenancy.models import Membership
from portal.tenancy.roles import Role
from portal.tenancy.team import (
    change_role,
    find_member,
    owner_count,
    remove_member,
    team_members,
    transfer_ownership,
)


def _as(user) -> Actor:
    return Actor(label=user.email, user_id=user.id)


def _member(world, user):
    return find_member(db.session, world.a.tenant, user.public_id)


def test_members_are_listed_owners_first_and_scoped(world):
    members = team_members(db.session, world.a.tenant)
    assert [m.role for m in members] == [Role.OWNER, Role.BILLING_ADMIN, Role.VIEWER]
    assert find_member(db.session, world.a.tenant, world.b.owner.public_id) is None
    assert find_member(db.session, world.a.tenant, "not-a-uuid") is None


def test_change_role_is_audited_and_emailed(world, mailbox):
    membership = change_role(
        db.session, world.a.tenant, _member(world, world.a.viewer), "billing_admin",
        actor=_as(world.a.owner),
    )  # fmt: skip
    db.session.commit()
    assert membership.role == Role.BILLING_ADMIN
    [message] = mailbox.wait_for(1)
    assert message["To"] == world.a.viewer.email
    assert "Billing admin" in message.get_body(preferencelist=("plain",)).get_content()
    entry = db.session.scalars(
        sa.select(AuditLogEntry).where(AuditLogEntry.action == "membership.role_change")
    ).one()
    assert entry.data == {
        "before": {"email": world.a.viewer.email, "role": "viewer"},
        "after": {"email": world.a.viewer.email, "role": "billing_admin"},
    }


def test_the_last_owner_can_be_neither_demoted_nor_removed(world, mailbox):
    owner = _member(world, world.a.owner)
    with pytest.raises(TeamRefused) as demote:
        change_role(db.session, world.a.tenant, owner, "viewer", actor=_as(world.a.owner))
    assert demote.value.code == "last_owner"
    db.session.rollback()
    with pytest.raises(TeamRefused) as remove:
        remove_member(db.session, world.a.tenant, _member(world, world.a.owner),
                      actor=Actor(label="admin"), acting_member=False)  # fmt: skip
    assert remove.value.code == "last_owner"
    db.session.rollback()
    assert owner_count(db.session, world.a.tenant) == 1
    assert mailbox.messages == []


def test_with_two_owners_one_may_leave(world, mailbox):
    change_role(db.session, world.a.tenant, _member(world, world.a.billing_admin), "owner",
                actor=_as(world.a.owner))  # fmt: skip
    user = remove_member(
        db.session, world.a.tenant, _member(world, world.a.owner), actor=_as(world.a.owner)
    )
    db.session.commit()
    assert user.id == world.a.owner.id
    assert owner_count(db.session, world.a.tenant) == 1
    assert mailbox.wait_for(2)[1]["Subject"] == "You are no longer a member of Alpha Industries"


def test_only_owners_change_the_team(world):
    with pytest.raises(TeamRefused) as refused:
        remove_member(db.session, world.a.tenant, _member(world, world.a.viewer),
                      actor=_as(world.a.billing_admin))  # fmt: skip
    assert refused.value.code == "not_allowed"
    db.session.rollback()
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Membership)
            .where(Membership.tenant_id == world.a.tenant.id)
        )
        == 3
    )


def test_transfer_ownership_swaps_the_roles(world, mailbox):
    transfer_ownership(db.session, world.a.tenant, _member(world, world.a.viewer),
                       actor=_as(world.a.owner))  # fmt: skip
    db.session.commit()
    assert _member(world, world.a.viewer).role == Role.OWNER
    assert _member(world, world.a.owner).role == Role.BILLING_ADMIN
    assert mailbox.wait_for(1)[0]["Subject"] == "You are now an owner of Alpha Industries"
    with pytest.raises(TeamRefused) as again:
        transfer_ownership(db.session, world.a.tenant, _member(world, world.a.viewer),
                           actor=_as(world.a.viewer))  # fmt: skip
    assert again.value.code == "already_owner"


def test_unknown_role_is_refused(world):
    with pytest.raises(TeamRefused) as refused:
        change_role(db.session, world.a.tenant, _member(world, world.a.viewer), "root",
                    actor=_as(world.a.owner))  # fmt: skip
    assert (refused.value.code, refused.value.field) == ("invalid_role", "role")
