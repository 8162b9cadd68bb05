"""A signed-in user's own account: name and language, e-mail change, password change.

Every change locks the user's row, checks its precondition inside the lock, is audited, and
(for the e-mail address and the password) tells the user by e-mail through the outbox.

An e-mail change is confirmed through a link sent to the new address. The link's token is
signed and expiring and carries the user, the new address and the user's ``auth_version``;
confirming bumps that version, so the link works once, and a password change in between
also ends it. Nothing about the pending change is stored: there is no row to clean up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.db import lock, parse_public_id, utcnow
from portal.notifications.models import OutboxEmail
from portal.notifications.outbox import queue_email
from portal.ops.audit import N_, Actor, record_audit
from portal.tenancy.errors import TenancyError
from portal.tenancy.models import User
from portal.tenancy.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, verify_password
from portal.tenancy.profiles import Message
from portal.tenancy.services import normalize_email, set_password

#: The serializer's salt: a reset token or an invoice link never passes for this one.
EMAIL_CHANGE_SALT = "portal.email-change.v1"
#: How long a confirmation link works, in seconds (``EMAIL_CHANGE_MAX_AGE`` overrides it).
EMAIL_CHANGE_MAX_AGE = 24 * 3600
#: The longest name the ``users.name`` column stores.
NAME_MAX_LENGTH = 200
#: The longest address the ``users.email`` column stores (RFC 5321's path limit).
EMAIL_MAX_LENGTH = 254
#: Characters no text column (nor argon2's input) takes: NUL and lone surrogates.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_UNSTORABLE_MESSAGE = N_("Remove the NUL character (or other character that cannot be stored).")


class AccountInvalid(TenancyError):
    """The input breaks one or more rules; nothing was written.

    :ivar errors: one message per field name, e.g. ``{"current_password": "…"}``.
    """

    def __init__(self, errors: Mapping[str, str]):
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


class EmailChangeRefused(TenancyError):
    """A confirmation link that changes nothing.

    :ivar reason: ``invalid`` (tampered, malformed, unknown or inactive user), ``expired``,
        ``used`` (confirmed already, or the password or address changed since it was sent)
        or ``taken`` (another user has the address by now).
    """

    def __init__(self, reason: str, email: str | None = None):
        super().__init__(reason)
        self.reason = reason
        #: The address the link was for, when the link is genuine.
        self.email = email


@dataclass(frozen=True)
class EmailChange:
    """What a genuine, unexpired confirmation link asks for."""

    user: User
    new_email: str
    auth_version: int


def _unstorable(value: str) -> bool:
    return _UNSTORABLE.search(value) is not None


def _audit(session: Session, actor: Actor, action: str, user: User, **data: dict) -> None:
    # Accounts belong to no tenant: the entry names the user, not a company.
    record_audit(session, actor, action, "user", str(user.public_id), tenant_id=None, **data)


# --- Name and language ---------------------------------------------------------------------


def update_account(
    session: Session,
    user: User,
    *,
    name: str | None,
    locale: str | None,
    languages: Sequence[str],
    actor: Actor,
) -> bool:
    """Change the user's name and language; returns whether anything changed.

    :param languages: the languages the portal offers (``LANGUAGES``).
    :raise AccountInvalid: ``name`` empty, too long or unstorable; ``locale`` not offered.
    """
    errors: dict[str, str] = {}
    clean_name = (name or "").strip()
    if _unstorable(clean_name):
        errors["name"] = Message(_UNSTORABLE_MESSAGE)
    elif not clean_name:
        errors["name"] = Message(N_("Enter your name."))
    elif len(clean_name) > NAME_MAX_LENGTH:
        errors["name"] = Message(N_("Use at most %(max)d characters."), max=NAME_MAX_LENGTH)
    if locale not in languages:
        errors["language"] = Message(N_("Choose one of the languages offered."))
    if errors:
        raise AccountInvalid(errors)
    lock(session, user)
    before = {"name": user.name, "locale": user.locale}
    after = {"name": clean_name, "locale": locale}
    if before == after:
        return False
    user.name = clean_name
    user.locale = locale
    session.flush()
    _audit(session, actor, "account.update", user, before=before, after=after)
    return True


# --- E-mail change -------------------------------------------------------------------------


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=EMAIL_CHANGE_SALT)


def make_email_change_token(user: User, new_email: str, secret_key: str) -> str:
    """A signed token for changing ``user``'s address to ``new_email`` (expiry is checked
    when it is read, from the time it was signed)."""
    return _serializer(secret_key).dumps([user.public_id.hex, new_email, user.auth_version])


def _check_new_email(
    session: Session, user: User, new_email: str | None
) -> tuple[str | None, Message | None]:
    """The normalized address, or the message why it cannot be the user's."""
    raw = (new_email or "").strip()
    if _unstorable(raw):
        return None, Message(_UNSTORABLE_MESSAGE)
    if not raw:
        return None, Message(N_("Enter your new e-mail address."))
    if len(raw) > EMAIL_MAX_LENGTH:
        return None, Message(N_("Use at most %(max)d characters."), max=EMAIL_MAX_LENGTH)
    try:
        address = normalize_email(validate_email(raw, check_deliverability=False).normalized)
    except EmailNotValidError:
        return None, Message(N_("Enter a valid e-mail address, such as name@example.com."))
    if len(address) > EMAIL_MAX_LENGTH:  # an IDN domain can grow when normalized
        return None, Message(N_("Use at most %(max)d characters."), max=EMAIL_MAX_LENGTH)
    if address == user.email:
        return None, Message(N_("This is already your e-mail address."))
    if _email_taken(session, address, user):
        return None, Message(N_("Another account already uses this e-mail address."))
    return address, None


def _email_taken(session: Session, address: str, user: User) -> bool:
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(User)
            .where(User.email == address, User.id != user.id)
        )
        or 0
    ) > 0


def _check_password(user: User, password: str | None) -> Message | None:
    """Why ``password`` is not the user's current password, or None when it is."""
    if not password:
        return Message(N_("Enter your current password."))
    if _unstorable(password) or not verify_password(user.password_hash, password):
        return Message(N_("This is not your current password."))
    return None


def request_email_change(
    session: Session,
    user: User,
    *,
    new_email: str | None,
    password: str | None,
    secret_key: str,
    confirm_url: Callable[[str], str],
    max_age: int = EMAIL_CHANGE_MAX_AGE,
    actor: Actor,
) -> OutboxEmail:
    """Send a confirmation link to ``new_email``; the address changes only when it is opened.

    :param password: the user's current password (whoever has the session alone may not).
    :param confirm_url: builds the link's absolute URL from its token.
    :param max_age: how long the link works, in seconds (only said in the e-mail here).
    :raise AccountInvalid: on ``email`` or ``password``; nothing is written then.
    """
    lock(session, user)
    errors: dict[str, str] = {}
    address, problem = _check_new_email(session, user, new_email)
    if problem is not None:
        errors["email"] = problem
    if (problem := _check_password(user, password)) is not None:
        errors["password"] = problem
    if errors or address is None:
        raise AccountInvalid(errors)
    token = make_email_change_token(user, address, secret_key)
    email = queue_email(
        session,
        template="email_change",
        to=[address],
        # One e-mail per token: a second request in the same second reuses the first.
        dedupe_key=f"email-change:{user.public_id}:{token[-16:]}",
        locale=user.locale or "en",
        context={
            "user": user,
            "new_email": address,
            "confirm_url": confirm_url(token),
            "valid_hours": max(1, max_age // 3600),
        },
    )
    _audit(session, actor, "account.email_change_request", user, after={"new_email": address})
    return email


def read_email_change(
    session: Session, token: str, *, secret_key: str, max_age: int
) -> EmailChange:
    """What a confirmation link asks for, checked against the user as they are now.

    :raise EmailChangeRefused: ``invalid``, ``expired``, ``used`` or ``taken``.
    """
    try:
        public_hex, new_email, version = _serializer(secret_key).loads(token, max_age=max_age)
        version = int(version)
        new_email = str(new_email)
    except SignatureExpired:
        raise EmailChangeRefused("expired") from None
    except (BadSignature, ValueError, TypeError):
        raise EmailChangeRefused("invalid") from None
    uid = parse_public_id(str(public_hex))
    user = session.scalars(sa.select(User).where(User.public_id == uid)).first() if uid else None
    if user is None or not user.is_active:
        raise EmailChangeRefused("invalid")
    change = EmailChange(user=user, new_email=new_email, auth_version=version)
    _check_still_valid(session, change)
    return change


def _check_still_valid(session: Session, change: EmailChange) -> None:
    user = change.user
    if user.auth_version != change.auth_version or user.email == change.new_email:
        raise EmailChangeRefused("used", change.new_email)
    if _email_taken(session, change.new_email, user):
        raise EmailChangeRefused("taken", change.new_email)


def confirm_email_change(session: Session, change: EmailChange, *, actor: Actor) -> User:
    """Make the link's address the user's, end their other sessions, tell the old address.

    Locks the user's row and checks again inside the lock: a link confirmed twice at once,
    or after a password change, is ``used``; an address another user took meanwhile is
    ``taken`` (the unique constraint decides a race between two users).

    :raise EmailChangeRefused: ``used`` or ``taken``; nothing is written then.
    """
    user = lock(session, change.user)
    if not user.is_active:
        raise EmailChangeRefused("invalid")
    _check_still_valid(session, change)
    old_email = user.email
    user.email = change.new_email
    # Single use: the token carries the old version. Other sessions end with it, as they do
    # on a password change; the view signs the confirming session in again if it is theirs.
    user.auth_version = (user.auth_version or 1) + 1
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise EmailChangeRefused("taken", change.new_email) from None
    _audit(
        session, actor, "account.email_change", user,
        before={"email": old_email}, after={"email": user.email},
    )  # fmt: skip
    queue_email(
        session,
        template="email_changed",
        to=[old_email],
        dedupe_key=f"email-changed:{user.public_id}:{user.auth_version}",
        locale=user.locale or "en",
        context={"user": user, "old_email": old_email, "new_email": user.email, "at": utcnow()},
    )
    return user


# --- Password change -----------------------------------------------------------------------


def change_password(
    session: Session,
    user: User,
    *,
    current_password: str | None,
    new_password: str | None,
    repeat: str | None,
    actor: Actor,
) -> User:
    """Change the password after checking the current one; other sessions end.

    The new password follows :func:`portal.tenancy.passwords.check_policy` (checked here
    with a message per field; ``set_password`` checks it again). The auth version is bumped,
    which ends every session of the user: the view signs the current one in again.

    :raise AccountInvalid: on ``current_password``, ``new_password`` or ``repeat``.
    """
    lock(session, user)
    errors: dict[str, str] = {}
    if (problem := _check_password(user, current_password)) is not None:
        errors["current_password"] = problem
    new = new_password or ""
    if _unstorable(new):
        errors["new_password"] = Message(_UNSTORABLE_MESSAGE)
    elif len(new) < MIN_PASSWORD_LENGTH:
        errors["new_password"] = Message(
            N_("Use at least %(min)d characters."), min=MIN_PASSWORD_LENGTH
        )
    elif len(new) > MAX_PASSWORD_LENGTH:
        errors["new_password"] = Message(
            N_("Use at most %(max)d characters."), max=MAX_PASSWORD_LENGTH
        )
    elif "current_password" not in errors and new == current_password:
        errors["new_password"] = Message(N_("Choose a password different from the current one."))
    if "new_password" not in errors and (repeat or "") != new:
        errors["repeat"] = Message(N_("The two new passwords do not match."))
    if errors:
        raise AccountInvalid(errors)
    set_password(user, new)
    session.flush()
    _audit(
        session, actor, "account.password_change", user, after={"auth_version": user.auth_version}
    )
    queue_email(
        session,
        template="password_changed",
        to=[user.email],
        dedupe_key=f"password-changed:{user.public_id}:{user.auth_version}",
        locale=user.locale or "en",
        context={"user": user, "at": utcnow()},
    )
    return user
