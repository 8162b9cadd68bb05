"""Invitations: invite by e-mail with a role, resend, revoke, list, and accept by the link.

The e-mailed link holds the invitation's public id and a random secret, signed with the
app's secret: a changed character fails the signature before the database is asked. Only
the secret's SHA-256 hash is stored, so a resend (a new secret) kills the old link, and the
table alone opens nothing. Every change locks the company's row first, then the
invitation's, and checks its precondition inside the lock, so a double click or twenty
racing accepts have one effect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from portal.db import lock, parse_public_id, scoped, utcnow
from portal.notifications.models import OutboxEmail
from portal.notifications.outbox import queue_email
from portal.ops.audit import N_, Actor, record_audit
from portal.tenancy.errors import InvitationUnusable, TeamRefused
from portal.tenancy.models import Invitation, Membership, Tenant, User
from portal.tenancy.passwords import check_policy, hash_password
from portal.tenancy.profiles import get_billing_profile
from portal.tenancy.roles import Role
from portal.tenancy.services import add_membership, get_user_by_email, normalize_email

#: The serializer's salt: a token signed for anything else (a reset or invoice link) never
#: opens an invitation.
_SALT = "portal.invitation.v1"
NAME_MAX = 200

ALREADY_MEMBER = N_("This person is already a member of the company.")
ALREADY_INVITED = N_("An invitation to this e-mail address is pending: resend it instead.")


@dataclass(frozen=True)
class Accepted:
    """What accepting an invitation did: who joined, with which membership."""

    user: User
    membership: Membership
    invitation: Invitation
    created_user: bool


# --- tokens ------------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(invitation: Invitation) -> str:
    """Give ``invitation`` a new secret (its hash is stored) and return its URL token."""
    secret = secrets.token_urlsafe(32)
    invitation.token_hash = _hash(secret)
    return _serializer().dumps([invitation.public_id.hex, secret])


def accept_url(token: str) -> str:
    """The absolute URL of an invitation link (``PUBLIC_BASE_URL``)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    # Built without a request: the console API and pages alike queue the e-mail.
    adapter = current_app.url_map.bind("localhost")
    return base + adapter.build("team.accept", {"token": token})


def max_age() -> dt.timedelta:
    """How long a new link stays valid (``INVITATION_MAX_AGE_DAYS``, 7 by default)."""
    return dt.timedelta(days=int(current_app.config.get("INVITATION_MAX_AGE_DAYS", 7)))


def status_of(invitation: Invitation, now: dt.datetime | None = None) -> str:
    """``pending``, ``accepted``, ``revoked`` or ``expired``."""
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    return "pending" if invitation.is_pending(now) else "expired"


# --- reads -------------------------------------------------------------------------------


def pending_invitations(
    session: Session, tenant: Tenant, now: dt.datetime | None = None
) -> list[Invitation]:
    """The company's invitations that can still be accepted, newest first."""
    now = now or utcnow()
    return list(
        session.scalars(
            scoped(Invitation, tenant)
            .where(
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .options(sa.orm.joinedload(Invitation.invited_by))
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        )
    )


def company_invitations(session: Session, tenant: Tenant) -> list[Invitation]:
    """Every invitation of the company (closed ones too), newest first."""
    return list(
        session.scalars(
            scoped(Invitation, tenant).order_by(Invitation.created_at.desc(), Invitation.id.desc())
        )
    )


def find_invitation(session: Session, tenant: Tenant, public_id: object) -> Invitation | None:
    """The company's invitation with ``public_id``; None for another company's or a bad id."""
    uid = parse_public_id(public_id)
    if uid is None:
        return None
    return session.scalars(
        scoped(Invitation, tenant).where(Invitation.public_id == uid)
    ).one_or_none()


def _member_by_email(session: Session, tenant: Tenant, email: str) -> Membership | None:
    return session.scalars(
        sa.select(Membership)
        .join(Membership.user)
        .where(Membership.tenant_id == tenant.id, User.email == email)
    ).first()


def _open_invitation(session: Session, tenant: Tenant, email: str) -> Invitation | None:
    return session.scalars(
        scoped(Invitation, tenant).where(
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    ).first()


# --- writes ------------------------------------------------------------------------------


def clean_email(email: str | None) -> str:
    """The address, checked and lower-cased.

    :raise TeamRefused: ``invalid_email`` at ``email``.
    """
    text = (email or "").strip()
    if not text:
        raise TeamRefused("invalid_email", N_("Enter an e-mail address."), "email")
    try:
        normalized = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise TeamRefused("invalid_email", N_("Enter a valid e-mail address."), "email") from None
    if len(normalized) > 254:
        raise TeamRefused("invalid_email", N_("Enter a valid e-mail address."), "email")
    return normalize_email(normalized)


def clean_role(role: object) -> Role:
    """The role named by ``role``.

    :raise TeamRefused: ``invalid_role`` at ``role``.
    """
    try:
        return Role(str(role))
    except ValueError:
        raise TeamRefused("invalid_role", N_("Choose a role."), "role") from None


def _actor_user(session: Session, actor: Actor) -> User | None:
    return session.get(User, actor.user_id) if actor.user_id else None


def _open_company(session: Session, tenant: Tenant) -> None:
    """Lock the company's row: every change of its team is serialized on it."""
    lock(session, tenant)
    if tenant.archived_at is not None:
        raise TeamRefused(
            "company_archived", N_("The company is archived: its team cannot change.")
        )


def invite(
    session: Session,
    tenant: Tenant,
    *,
    email: str | None,
    role: object,
    actor: Actor,
    now: dt.datetime | None = None,
) -> Invitation:
    """Invite ``email`` to join ``tenant`` as ``role`` and queue the e-mail with the link.

    Under the company's lock: an e-mail that is already a member, or that has a pending
    invitation, is refused (resend that one instead); an expired open invitation to it is
    closed and replaced.

    :raise TeamRefused: ``invalid_email``, ``invalid_role``, ``already_member``,
        ``invitation_pending`` or ``company_archived``.
    """
    address = clean_email(email)
    chosen = clean_role(role)
    now = now or utcnow()
    _open_company(session, tenant)
    if _member_by_email(session, tenant, address) is not None:
        raise TeamRefused("already_member", ALREADY_MEMBER, "email")
    earlier = _open_invitation(session, tenant, address)
    if earlier is not None:
        if earlier.is_pending(now):
            raise TeamRefused("invitation_pending", ALREADY_INVITED, "email")
        earlier.revoked_at = now  # expired: it gives way to the new one
        session.flush()
    inviter = _actor_user(session, actor)
    invitation = Invitation(
        public_id=uuid.uuid4(),
        tenant_id=tenant.id,
        email=address,
        role=chosen,
        invited_by_id=inviter.id if inviter else None,
        invited_by_label=((inviter.name or inviter.email) if inviter else actor.label)[:254],
        expires_at=now + max_age(),
        resend_count=0,
        created_at=now,
    )
    invitation.tenant = tenant
    token = _new_secret(invitation)
    session.add(invitation)
    session.flush()
    _send_invitation_email(session, invitation, token)
    record_audit(
        session, actor, "invitation.create", "invitation", str(invitation.public_id),
        tenant_id=tenant.id, after={"email": address, "role": chosen.value},
    )  # fmt: skip
    return invitation


def _lock_pending(
    session: Session, tenant: Tenant, invitation: Invitation, now: dt.datetime
) -> None:
    _open_company(session, tenant)
    lock(session, invitation)
    if invitation.accepted_at is not None:
        raise TeamRefused("invitation_accepted", N_("The invitation has been accepted."))
    if invitation.revoked_at is not None:
        raise TeamRefused("invitation_revoked", N_("The invitation has been revoked."))


def resend_invitation(
    session: Session,
    tenant: Tenant,
    invitation: Invitation,
    *,
    actor: Actor,
    now: dt.datetime | None = None,
) -> Invitation:
    """Send the invitation again with a new link (the old one stops working) and a new
    expiry. An expired invitation may be resent; an accepted or revoked one not.

    :raise TeamRefused: ``invitation_accepted``, ``invitation_revoked``,
        ``company_archived``.
    """
    now = now or utcnow()
    _lock_pending(session, tenant, invitation, now)
    if _member_by_email(session, tenant, invitation.email) is not None:
        raise TeamRefused("already_member", ALREADY_MEMBER, "email")
    token = _new_secret(invitation)
    invitation.resend_count += 1
    invitation.expires_at = now + max_age()
    session.flush()
    _send_invitation_email(session, invitation, token)
    record_audit(
        session, actor, "invitation.resend", "invitation", str(invitation.public_id),
        tenant_id=tenant.id,
        after={"email": invitation.email, "resend_count": invitation.resend_count},
    )  # fmt: skip
    return invitation


def revoke_invitation(
    session: Session,
    tenant: Tenant,
    invitation: Invitation,
    *,
    actor: Actor,
    now: dt.datetime | None = None,
) -> Invitation:
    """Withdraw the invitation: its link never works again.

    :raise TeamRefused: ``invitation_accepted``, ``invitation_revoked``,
        ``company_archived``.
    """
    now = now or utcnow()
    _lock_pending(session, tenant, invitation, now)
    invitation.revoked_at = now
    session.flush()
    record_audit(
        session, actor, "invitation.revoke", "invitation", str(invitation.public_id),
        tenant_id=tenant.id, before={"email": invitation.email, "role": invitation.role.value},
    )  # fmt: skip
    return invitation


def resolve_invitation(session: Session, token: str, now: dt.datetime | None = None) -> Invitation:
    """The pending invitation a link token opens.

    :raise InvitationUnusable: "invalid" for a tampered, malformed or unknown token;
        "replaced", "used", "revoked" or "expired" for one that no longer opens it.
    """
    invitation, _secret = _resolve(session, token, now or utcnow())
    return invitation


def _resolve(session: Session, token: str, now: dt.datetime) -> tuple[Invitation, str]:
    try:
        public_hex, secret = _serializer().loads(token)
        uid = parse_public_id(public_hex)
    except (BadSignature, ValueError, TypeError):
        raise InvitationUnusable("invalid") from None
    if uid is None or not isinstance(secret, str):
        raise InvitationUnusable("invalid")
    invitation = session.scalars(
        sa.select(Invitation)
        .where(Invitation.public_id == uid)
        .options(sa.orm.joinedload(Invitation.tenant))
    ).one_or_none()
    if invitation is None:
        raise InvitationUnusable("invalid")
    _check_usable(invitation, secret, now)
    return invitation, secret


def _check_usable(invitation: Invitation, secret: str, now: dt.datetime) -> None:
    if invitation.accepted_at is not None:
        raise InvitationUnusable("used")
    if invitation.revoked_at is not None or invitation.tenant.archived_at is not None:
        raise InvitationUnusable("revoked")
    if not secrets.compare_digest(invitation.token_hash, _hash(secret)):
        raise InvitationUnusable("replaced")
    if invitation.expires_at <= now:
        raise InvitationUnusable("expired")


_ACCOUNT_EXISTS = N_("An account with this e-mail exists: sign in to join.")


def _accept(
    session: Session,
    token: str,
    now: dt.datetime,
    *,
    user: User | None = None,
    new_account: tuple[str, str, str | None] | None = None,
) -> Accepted:
    """Join as ``user``, or as a new account ``(name, password hash, locale)``: under the locks of
    the company and the invitation, after checking the link again inside them."""
    invitation, secret = _resolve(session, token, now)
    tenant = invitation.tenant
    lock(session, tenant)
    lock(session, invitation)
    _check_usable(invitation, secret, now)  # again, inside the lock: one accept wins
    if user is None:
        assert new_account is not None
        if get_user_by_email(session, invitation.email) is not None:
            raise TeamRefused("account_exists", _ACCOUNT_EXISTS, "email")
        name, password_hash, locale = new_account
        user = User(email=invitation.email, name=name, password_hash=password_hash, locale=locale)
        user.last_login_at = now
        try:
            with session.begin_nested():  # another company's invitation may create it first
                session.add(user)
                session.flush()
        except sa.exc.IntegrityError:
            raise TeamRefused("account_exists", _ACCOUNT_EXISTS, "email") from None
    elif user.email != invitation.email:
        raise TeamRefused(
            "wrong_account", N_("This invitation is for another e-mail address."), "email"
        )
    existing = session.scalars(
        sa.select(Membership).where(
            Membership.tenant_id == tenant.id, Membership.user_id == user.id
        )
    ).first()
    # Already in (added meanwhile): the invitation is spent and the role stays as it is.
    membership = existing or add_membership(session, user=user, tenant=tenant, role=invitation.role)
    invitation.accepted_at = now
    invitation.accepted_user_id = user.id
    session.flush()
    record_audit(
        session, Actor(label=user.email, user_id=user.id), "invitation.accept", "invitation",
        str(invitation.public_id), tenant_id=tenant.id,
        after={
            "email": user.email, "role": membership.role.value, "new_account": bool(new_account),
        },
    )  # fmt: skip
    return Accepted(user, membership, invitation, new_account is not None)


def accept_as_new_user(
    session: Session,
    token: str,
    *,
    name: str | None,
    password: str | None,
    locale: str | None = None,
    now: dt.datetime | None = None,
) -> Accepted:
    """Create the invitee's account (the invitation's e-mail, ``name``, ``password``, and
    ``locale``, the language they accepted in) and join the company with the invitation's
    role.

    :raise InvitationUnusable: for a link that no longer opens the invitation.
    :raise TeamRefused: ``invalid_name``; ``account_exists`` when an account has the
        e-mail (it signs in instead).
    :raise WeakPassword: when the password breaks the policy.
    """
    now = now or utcnow()
    clean_name = " ".join((name or "").split())
    if not clean_name:
        raise TeamRefused("invalid_name", N_("Enter your name."), "name")
    if len(clean_name) > NAME_MAX:
        raise TeamRefused("invalid_name", N_("Use at most 200 characters."), "name")
    check_policy(password or "")
    resolve_invitation(session, token, now)  # a dead link is refused before the slow hash
    # Hashed before any lock is taken: argon2 is slow on purpose.
    password_hash = hash_password(password or "")
    return _accept(session, token, now, new_account=(clean_name, password_hash, locale))


def accept_as_user(
    session: Session, token: str, user: User, now: dt.datetime | None = None
) -> Accepted:
    """Join the company as ``user`` (signed in, with the invitation's e-mail).

    :raise InvitationUnusable: for a link that no longer opens the invitation.
    :raise TeamRefused: ``wrong_account`` when ``user`` has another e-mail address.
    """
    return _accept(session, token, now or utcnow(), user=user)


# --- e-mail ------------------------------------------------------------------------------


def recipient_language(session: Session, tenant: Tenant, email: str) -> str:
    """The invitee's language: the user's saved locale when the account exists, else the
    company's billing-profile language."""
    user = get_user_by_email(session, email)
    profile = get_billing_profile(session, tenant)
    company = (profile.language if profile else None) or "en"
    if user is not None:
        return user.locale or company
    return company


def _send_invitation_email(session: Session, invitation: Invitation, token: str) -> OutboxEmail:
    tenant = invitation.tenant
    existing = get_user_by_email(session, invitation.email)
    language = recipient_language(session, tenant, invitation.email)
    invitation.language = language
    inviter = invitation.invited_by
    seller = tenant.seller
    return queue_email(
        session,
        template="invitation",
        to=[invitation.email],
        dedupe_key=f"invitation:{invitation.public_id}:{invitation.resend_count}",
        locale=language,
        tenant_id=tenant.id,
        context={
            "language": language,
            "company": tenant.name,
            "inviter": (inviter.name if inviter else None)
            or seller.trading_name
            or seller.legal_name,
            "role": invitation.role.value,
            "accept_url": accept_url(token),
            "expires_on": invitation.expires_at.date(),
            "existing_account": existing is not None,
        },
    )


__all__ = [
    "Accepted",
    "accept_as_new_user",
    "accept_as_user",
    "accept_url",
    "clean_email",
    "clean_role",
    "company_invitations",
    "find_invitation",
    "invite",
    "pending_invitations",
    "recipient_language",
    "resend_invitation",
    "resolve_invitation",
    "revoke_invitation",
    "status_of",
]
