"""Use cases of tenancy: users, memberships, login, password reset and API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from portal.db import parse_public_id, utcnow
from portal.tenancy.errors import EmailTaken, InvalidResetToken
from portal.tenancy.models import ApiToken, Membership, PlatformAdmin, Tenant, TokenKind, User
from portal.tenancy.passwords import check_policy, hash_password, needs_rehash, verify_password
from portal.tenancy.roles import Role

TOKEN_PREFIX = "tbp_"  # noqa: S105 (a public marker, not a secret)
RESET_SALT = "password-reset"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(sa.select(User).where(User.email == normalize_email(email))).first()


def create_user(session: Session, *, email: str, name: str, password: str) -> User:
    """Create a user with an argon2 password hash.

    :raise EmailTaken: when the e-mail is in use.
    :raise WeakPassword: when the password breaks the policy.
    """
    check_policy(password)
    if get_user_by_email(session, email) is not None:
        raise EmailTaken(email)
    user = User(email=normalize_email(email), name=name, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """Change the password; other sessions and outstanding reset links stop working."""
    check_policy(password)
    user.password_hash = hash_password(password)
    user.auth_version = (user.auth_version or 1) + 1


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or None. Upgrades old hashes."""
    user = get_user_by_email(session, email)
    if not verify_password(user.password_hash if user else None, password):
        return None
    if user is None or not user.is_active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def load_session_user(session: Session, session_id: str) -> User | None:
    """The user of a Flask-Login session id ("<public id>:<auth version>")."""
    public_id, _, version = session_id.partition(":")
    uid = parse_public_id(public_id)
    if uid is None or not version.isdigit():
        return None
    # The user, whether they are a platform admin, and their memberships with tenants: what
    # every page needs, in one round trip.
    user = (
        session.scalars(
            sa.select(User)
            .where(User.public_id == uid)
            .options(
                sa.orm.joinedload(User.platform_admin),
                sa.orm.joinedload(User.memberships).joinedload(Membership.tenant),
            )
        )
        .unique()
        .first()
    )
    if user is None or not user.is_active or user.auth_version != int(version):
        return None
    return user


def _fingerprint(user: User) -> str:
    # Part of the reset token: once the password (hash) changes, the token is spent.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_reset_token(user: User, secret_key: str) -> str:
    """A signed, expiring, single-use password-reset token."""
    serializer = URLSafeTimedSerializer(secret_key, salt=RESET_SALT)
    return serializer.dumps([str(user.public_id), _fingerprint(user)])


def user_for_reset_token(session: Session, token: str, secret_key: str, max_age: int) -> User:
    """The user a reset token was made for.

    :raise InvalidResetToken: when the token is bad, expired or already used.
    """
    serializer = URLSafeTimedSerializer(secret_key, salt=RESET_SALT)
    try:
        public_id, fingerprint = serializer.loads(token, max_age=max_age)
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidResetToken() from exc
    uid = parse_public_id(public_id)
    user = session.scalars(sa.select(User).where(User.public_id == uid)).first() if uid else None
    if (
        user is None
        or not user.is_active
        or not secrets.compare_digest(_fingerprint(user), str(fingerprint))
    ):
        raise InvalidResetToken()
    return user


def memberships_of(session: Session, user: User) -> list[Membership]:
    """The user's memberships of active tenants, by tenant name.

    Uses the memberships loaded with the user (:func:`load_session_user`) when they are.
    """
    if "memberships" in user.__dict__:
        loaded = [m for m in user.memberships if m.tenant.is_active]
        return sorted(loaded, key=lambda m: (m.tenant.name, m.tenant.id))
    return list(
        session.scalars(
            sa.select(Membership)
            .join(Membership.tenant)
            .where(Membership.user_id == user.id, Tenant.is_active.is_(True))
            .options(sa.orm.contains_eager(Membership.tenant))
            .order_by(Tenant.name)
        )
    )


def add_membership(session: Session, *, user: User, tenant: Tenant, role: Role) -> Membership:
    """Give ``user`` ``role`` in ``tenant`` (updating an existing membership)."""
    membership = session.scalars(
        sa.select(Membership).where(
            Membership.user_id == user.id, Membership.tenant_id == tenant.id
        )
    ).first()
    if membership is None:
        membership = Membership(user=user, tenant=tenant, role=role)
        session.add(membership)
    else:
        membership.role = role
    session.flush()
    return membership


def make_platform_admin(session: Session, user: User) -> PlatformAdmin:
    """Make ``user`` a platform admin (idempotent)."""
    if user.platform_admin is None:
        user.platform_admin = PlatformAdmin()
        session.flush()
    return user.platform_admin


def _hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_token(
    session: Session,
    *,
    kind: TokenKind,
    name: str,
    tenant: Tenant | None = None,
    scopes: list[str] | None = None,
    created_by: User | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns it with the plaintext, which is never stored or shown again."""
    if (kind == TokenKind.TENANT) != (tenant is not None):
        raise ValueError("tenant tokens need a tenant; admin tokens must not have one")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        kind=kind,
        tenant=tenant,
        name=name,
        prefix=plaintext[: len(TOKEN_PREFIX) + 6],
        token_hash=_hash_token(plaintext),
        scopes=list(scopes or []),
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token, plaintext


#: How precisely a token's last use is recorded.
TOKEN_USE_RESOLUTION = dt.timedelta(minutes=1)


def authenticate_token(session: Session, plaintext: str, kind: TokenKind) -> ApiToken | None:
    """The usable token of ``kind`` matching ``plaintext``; records its use."""
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    token = session.scalars(
        sa.select(ApiToken)
        .where(ApiToken.token_hash == _hash_token(plaintext))
        .options(sa.orm.joinedload(ApiToken.tenant))
    ).first()
    if token is None or token.kind != kind or not token.is_usable():
        return None
    now = utcnow()
    # At most once a minute: a write per request would serialize a busy client's
    # concurrent requests on this one row.
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RESOLUTION:
        token.last_used_at = now
    return token


def revoke_api_token(token: ApiToken) -> None:
    """Revoke a token (idempotent)."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
