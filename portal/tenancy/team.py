"""A company's team: members and their roles; change a role, remove, transfer ownership.

The company always keeps an owner. Every change locks the company's row first and then
checks, inside the lock, that the acting member may still manage the team, that the member
is still there, and how many owners are left: so two owners removing each other at once
leave one of them, never none. Each change is audited and e-mailed to the member it
concerns.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session, contains_eager

from portal.db import lock, parse_public_id
from portal.notifications.models import OutboxEmail
from portal.notifications.outbox import queue_email
from portal.ops.audit import N_, Actor, record_audit
from portal.tenancy.errors import TeamRefused
from portal.tenancy.models import Membership, Tenant, User
from portal.tenancy.profiles import get_billing_profile
from portal.tenancy.roles import Role, role_allows

LAST_OWNER = N_("The company must keep at least one owner: make someone else an owner first.")
_ROLE_ORDER = {Role.OWNER: 0, Role.BILLING_ADMIN: 1, Role.VIEWER: 2}


def team_members(session: Session, tenant: Tenant) -> list[Membership]:
    """The company's memberships with their users: owners first, then by name."""
    rows = session.scalars(
        sa.select(Membership)
        .join(Membership.user)
        .where(Membership.tenant_id == tenant.id)
        .options(contains_eager(Membership.user))
    ).all()
    return sorted(rows, key=lambda m: (_ROLE_ORDER[m.role], m.user.name.casefold(), m.id))


def find_member(session: Session, tenant: Tenant, user_public_id: object) -> Membership | None:
    """The company's membership of the user with ``user_public_id``; None for a user of no
    membership here (another company's member) or a malformed id."""
    uid = parse_public_id(user_public_id)
    if uid is None:
        return None
    return session.scalars(
        sa.select(Membership)
        .join(Membership.user)
        .where(Membership.tenant_id == tenant.id, User.public_id == uid)
        .options(contains_eager(Membership.user))
    ).one_or_none()


def owner_count(session: Session, tenant: Tenant) -> int:
    """How many owners the company has."""
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Membership)
            .where(Membership.tenant_id == tenant.id, Membership.role == Role.OWNER)
        )
        or 0
    )


def _locked(session: Session, tenant: Tenant, member_id: int, acting_user_id: int | None):
    """Lock the company, then re-read the member and the acting member inside the lock.

    :raise TeamRefused: ``member_gone`` when the member left meanwhile, ``not_allowed``
        when the acting member may no longer manage the team.
    """
    lock(session, tenant)
    if tenant.archived_at is not None:
        raise TeamRefused(
            "company_archived", N_("The company is archived: its team cannot change.")
        )
    membership = session.scalars(
        sa.select(Membership)
        .where(Membership.id == member_id, Membership.tenant_id == tenant.id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if membership is None:
        raise TeamRefused("member_gone", N_("This person is no longer a member."))
    if acting_user_id is not None:
        acting = session.scalars(
            sa.select(Membership)
            .where(Membership.tenant_id == tenant.id, Membership.user_id == acting_user_id)
            .execution_options(populate_existing=True)
        ).one_or_none()
        if acting is None or not role_allows(acting.role, "manage_members"):
            raise TeamRefused("not_allowed", N_("Only owners can change the team."))
    return membership


def change_role(
    session: Session,
    tenant: Tenant,
    membership: Membership,
    role: object,
    *,
    actor: Actor,
    acting_member: bool = True,
) -> Membership:
    """Give the member another role. Demoting the last owner is refused.

    :param acting_member: whether ``actor`` acts as a member of the company (an owner on
        the Team page), whose own role is checked again under the lock; False for
        platform admins and admin tokens.
    :raise TeamRefused: ``invalid_role``, ``last_owner``, ``member_gone``,
        ``not_allowed``, ``company_archived``.
    """
    try:
        new_role = Role(str(role))
    except ValueError:
        raise TeamRefused("invalid_role", N_("Choose a role."), "role") from None
    membership = _locked(session, tenant, membership.id, actor.user_id if acting_member else None)
    old_role = membership.role
    if new_role == old_role:
        return membership
    if old_role == Role.OWNER and owner_count(session, tenant) <= 1:
        raise TeamRefused("last_owner", LAST_OWNER, "role")
    membership.role = new_role
    session.flush()
    _audit(session, actor, "membership.role_change", tenant, membership, old_role, new_role)
    _send_team_email(session, tenant, membership.user, "role_changed", new_role)
    return membership


def remove_member(
    session: Session,
    tenant: Tenant,
    membership: Membership,
    *,
    actor: Actor,
    acting_member: bool = True,
) -> User:
    """Take the member out of the company (their account stays). Removing the last owner
    is refused. Returns the removed user.

    :raise TeamRefused: ``last_owner``, ``member_gone``, ``not_allowed``,
        ``company_archived``.
    """
    membership = _locked(session, tenant, membership.id, actor.user_id if acting_member else None)
    if membership.role == Role.OWNER and owner_count(session, tenant) <= 1:
        raise TeamRefused("last_owner", LAST_OWNER)
    user = membership.user
    old_role = membership.role
    session.delete(membership)
    session.flush()
    _audit(session, actor, "membership.remove", tenant, membership, old_role, None)
    _send_team_email(session, tenant, user, "removed", None)
    return user


def transfer_ownership(
    session: Session, tenant: Tenant, membership: Membership, *, actor: Actor
) -> Membership:
    """Make the member an owner and the acting owner a billing admin, in one step.

    :raise TeamRefused: ``already_owner``, ``not_allowed`` (the actor is no owner here),
        ``member_gone``, ``company_archived``.
    """
    target = _locked(session, tenant, membership.id, actor.user_id)
    if target.user_id == actor.user_id or target.role == Role.OWNER:
        raise TeamRefused("already_owner", N_("This person is an owner already."))
    acting = session.scalars(
        sa.select(Membership).where(
            Membership.tenant_id == tenant.id, Membership.user_id == actor.user_id
        )
    ).one()
    target_before = target.role
    target.role = Role.OWNER
    acting.role = Role.BILLING_ADMIN
    session.flush()
    _audit(
        session, actor, "membership.transfer_ownership", tenant, target, target_before, Role.OWNER
    )
    _audit(session, actor, "membership.role_change", tenant, acting, Role.OWNER, Role.BILLING_ADMIN)
    _send_team_email(session, tenant, target.user, "ownership_received", Role.OWNER)
    return target


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    tenant: Tenant,
    membership: Membership,
    before: Role | None,
    after: Role | None,
) -> None:
    user = membership.user
    record_audit(
        session, actor, action, "membership", str(user.public_id), tenant_id=tenant.id,
        before={"email": user.email, "role": before.value} if before else None,
        after={"email": user.email, "role": after.value} if after else None,
    )  # fmt: skip


def _send_team_email(
    session: Session, tenant: Tenant, user: User, change: str, role: Role | None
) -> OutboxEmail:
    """Tell ``user`` what changed for them in the company, in their language."""
    profile = get_billing_profile(session, tenant)
    language = user.locale or (profile.language if profile else None) or "en"
    sequence = session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxEmail)
        .where(
            OutboxEmail.dedupe_key.startswith(
                f"team:{tenant.public_id}:{user.public_id}:", autoescape=True
            )
        )
    )
    return queue_email(
        session,
        template="team_change",
        to=[user.email],
        dedupe_key=f"team:{tenant.public_id}:{user.public_id}:{(sequence or 0) + 1}",
        locale=language,
        tenant_id=tenant.id,
        context={
            "language": language,
            "name": user.name,
            "company": tenant.name,
            "change": change,
            "role": role.value if role else None,
            "portal_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/",
        },
    )


__all__ = [
    "LAST_OWNER",
    "change_role",
    "find_member",
    "owner_count",
    "remove_member",
    "team_members",
    "transfer_ownership",
]
