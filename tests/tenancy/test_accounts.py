"""Account services: name and language, e-mail change by signed link, password change.

Each refusal writes nothing (no audit entry, no e-mail, no change); each change is audited
and, for the address and the password, told by e-mail.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from portal.notifications.models import OutboxEmail
from portal.ops.audit import Actor
from portal.ops.models import AuditLogEntry
from portal.tenancy.accounts import (
    EMAIL_CHANGE_MAX_AGE,
    EMAIL_CHANGE_SALT,
    AccountInvalid,
    EmailChangeRefused,
    change_password,
    confirm_email_change,
    make_email_change_token,
    read_email_change,
    request_email_change,
    update_account,
)
from portal.tenancy.models import User
from portal.tenancy.passwords import verify_password
from portal.tenancy.services import make_reset_token
from tests.factories.tenancy import PASSWORD, UserFactory

SECRET = "test-secret-key"
NEW_PASSWORD = "a much longer new password"


def actor(user: User) -> Actor:
    return Actor(label=user.email, user_id=user.id, ip_address="192.0.2.1")


def confirm_url(token: str) -> str:
    return f"http://localhost/account/email/confirm/{token}"


@pytest.fixture
def user(session) -> User:
    user = UserFactory(email="ada@example.com", name="Ada Lovelace", locale="en")
    session.commit()
    return user


def counts(session) -> tuple[int, int]:
    """(audit entries, outbox e-mails)."""
    audit = session.scalar(sa.select(sa.func.count()).select_from(AuditLogEntry))
    emails = session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))
    return audit, emails


def request_change(session, user, new_email="ada@new.example", password=PASSWORD):
    return request_email_change(
        session,
        user,
        new_email=new_email,
        password=password,
        secret_key=SECRET,
        confirm_url=confirm_url,
        actor=actor(user),
    )


def token_of(email: OutboxEmail) -> str:
    return email.body_text.split("/account/email/confirm/")[1].split()[0]


# -- name and language ------------------------------------------------------------------------


def test_name_and_language_change_is_audited(session, user):
    changed = update_account(
        session, user, name="  Ada King ", locale="de", languages=["en", "de"], actor=actor(user)
    )
    session.commit()
    assert changed is True
    session.expire_all()
    stored = session.get(User, user.id)
    assert (stored.name, stored.locale) == ("Ada King", "de")
    entry = session.scalars(sa.select(AuditLogEntry)).one()
    assert entry.action == "account.update"
    assert entry.target_type == "user" and entry.target_id == str(user.public_id)
    assert entry.tenant_id is None and entry.actor_user_id == user.id
    assert entry.data == {
        "before": {"name": "Ada Lovelace", "locale": "en"},
        "after": {"name": "Ada King", "locale": "de"},
    }


def test_unchanged_details_write_no_audit_entry(session, user):
    assert not update_account(
        session, user, name="Ada Lovelace", locale="en", languages=["en", "de"], actor=actor(user)
    )
    assert counts(session) == (0, 0)


@pytest.mark.parametrize(
    ("name", "locale", "errors"),
    [
        ("", "en", {"name"}),
        ("   ", "en", {"name"}),
        (None, "en", {"name"}),
        ("x" * 201, "en", {"name"}),
        ("Ada\x00", "en", {"name"}),
        ("Ada", "fr", {"language"}),
        ("Ada", None, {"language"}),
        ("", "xx", {"name", "language"}),
    ],
)
def test_bad_details_are_refused_and_nothing_changes(session, user, name, locale, errors):
    with pytest.raises(AccountInvalid) as refused:
        update_account(
            session, user, name=name, locale=locale, languages=["en", "de"], actor=actor(user)
        )
    assert set(refused.value.errors) == errors
    session.rollback()
    stored = session.get(User, user.id)
    assert (stored.name, stored.locale) == ("Ada Lovelace", "en")
    assert counts(session) == (0, 0)


# -- e-mail change ----------------------------------------------------------------------------


def test_request_sends_a_link_to_the_new_address_and_changes_nothing_yet(session, user):
    email = request_change(session, user, new_email="  Ada@NEW.example ")
    session.commit()
    assert email.to_addrs == ["ada@new.example"]
    assert email.template == "email_change"
    assert "Confirm your new e-mail address" in email.subject
    assert confirm_url(token_of(email)) in email.body_text
    assert confirm_url(token_of(email)) in email.body_html
    assert "24 hours" in email.body_text
    session.expire_all()
    assert session.get(User, user.id).email == "ada@example.com"
    entry = session.scalars(sa.select(AuditLogEntry)).one()
    assert entry.action == "account.email_change_request"
    assert entry.data == {"after": {"new_email": "ada@new.example"}}


def test_the_request_email_is_in_the_users_language(session, user):
    user.locale = "de"
    session.commit()
    email = request_change(session, user)
    assert "Bestätigen Sie Ihre neue E-Mail-Adresse" in email.subject
    assert "24 Stunden" in email.body_text


@pytest.mark.parametrize(
    ("new_email", "password", "errors"),
    [
        ("", PASSWORD, {"email"}),
        ("not-an-address", PASSWORD, {"email"}),
        ("a@b", PASSWORD, {"email"}),
        ("x" * 250 + "@example.com", PASSWORD, {"email"}),
        ("ada\x00@new.example", PASSWORD, {"email"}),
        ("ADA@example.com", PASSWORD, {"email"}),  # already hers
        ("taken@example.com", PASSWORD, {"email"}),  # another user's
        ("ada@new.example", "", {"password"}),
        ("ada@new.example", "wrong password!", {"password"}),
        ("ada@new.example", "pass\x00word", {"password"}),
        ("nope", "wrong password!", {"email", "password"}),
    ],
)
def test_bad_requests_are_refused_and_send_nothing(session, user, new_email, password, errors):
    UserFactory(email="taken@example.com")
    session.commit()
    with pytest.raises(AccountInvalid) as refused:
        request_change(session, user, new_email=new_email, password=password)
    assert set(refused.value.errors) == errors
    session.rollback()
    assert counts(session) == (0, 0)


def test_confirming_changes_the_address_tells_the_old_one_and_ends_other_sessions(session, user):
    token = token_of(request_change(session, user))
    session.commit()
    change = read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    assert (change.user.id, change.new_email) == (user.id, "ada@new.example")
    confirm_email_change(session, change, actor=actor(user))
    session.commit()
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored.email == "ada@new.example"
    assert stored.auth_version == 2  # the old session ids stop working
    notice = session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.template == "email_changed")
    ).one()
    assert notice.to_addrs == ["ada@example.com"]
    assert "ada@new.example" in notice.body_text
    entry = session.scalars(
        sa.select(AuditLogEntry).where(AuditLogEntry.action == "account.email_change")
    ).one()
    assert entry.data == {
        "before": {"email": "ada@example.com"},
        "after": {"email": "ada@new.example"},
    }


def test_a_link_works_once(session, user):
    token = token_of(request_change(session, user))
    session.commit()
    change = read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    confirm_email_change(session, change, actor=actor(user))
    session.commit()
    with pytest.raises(EmailChangeRefused) as refused:
        read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    assert refused.value.reason == "used"
    # Not even after the address is changed back: the version moved on.
    back = token_of(request_change(session, user, new_email="ada@example.com"))
    session.commit()
    confirm_email_change(
        session,
        read_email_change(session, back, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE),
        actor=actor(user),
    )
    session.commit()
    assert session.get(User, user.id).email == "ada@example.com"
    with pytest.raises(EmailChangeRefused) as refused:
        read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    assert refused.value.reason == "used"


def test_a_change_read_before_another_confirmation_is_refused_inside_the_lock(session, user):
    """Two tabs open the link; the second confirmation finds the version moved on."""
    token = token_of(request_change(session, user))
    session.commit()
    first = read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    second = read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    confirm_email_change(session, first, actor=actor(user))
    session.commit()
    audit, emails = counts(session)
    with pytest.raises(EmailChangeRefused) as refused:
        confirm_email_change(session, second, actor=actor(user))
    assert refused.value.reason == "used"
    session.rollback()
    assert counts(session) == (audit, emails)


def test_a_password_change_ends_an_outstanding_link(session, user):
    token = token_of(request_change(session, user))
    session.commit()
    change_password(
        session,
        user,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        repeat=NEW_PASSWORD,
        actor=actor(user),
    )
    session.commit()
    with pytest.raises(EmailChangeRefused) as refused:
        read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    assert refused.value.reason == "used"


def test_an_address_taken_meanwhile_is_refused_when_confirming(session, user):
    token = token_of(request_change(session, user))
    session.commit()
    change = read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    UserFactory(email="ada@new.example")  # registered between reading and confirming
    session.commit()
    audit, emails = counts(session)
    with pytest.raises(EmailChangeRefused) as refused:
        confirm_email_change(session, change, actor=actor(user))
    assert (refused.value.reason, refused.value.email) == ("taken", "ada@new.example")
    session.rollback()
    assert session.get(User, user.id).email == "ada@example.com"
    assert counts(session) == (audit, emails)
    with pytest.raises(EmailChangeRefused) as refused:
        read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    assert refused.value.reason == "taken"


def _signed_hours_ago(token: str, hours: float) -> str:
    """The same token as if it had been signed ``hours`` ago."""
    payload = URLSafeTimedSerializer(SECRET, salt=EMAIL_CHANGE_SALT).loads(token)

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - hours * 3600)

    return URLSafeTimedSerializer(SECRET, salt=EMAIL_CHANGE_SALT, signer=Earlier).dumps(payload)


def test_a_link_expires_after_24_hours(session, user):
    token = token_of(request_change(session, user))
    session.commit()
    fresh = _signed_hours_ago(token, 23.9)
    assert read_email_change(session, fresh, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    stale = _signed_hours_ago(token, 24.1)
    with pytest.raises(EmailChangeRefused) as refused:
        read_email_change(session, stale, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    assert refused.value.reason == "expired"


@pytest.mark.parametrize(
    "make",
    [
        lambda token, user: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token, user: "not-a-token",
        lambda token, user: "",
        # Signed with another secret, or for another purpose (a password-reset token).
        lambda token, user: make_email_change_token(user, "evil@example.com", "other secret"),
        lambda token, user: make_reset_token(user, SECRET),
        # Genuine signature, nonsense inside.
        lambda token, user: URLSafeTimedSerializer(SECRET, salt=EMAIL_CHANGE_SALT).dumps("x"),
        lambda token, user: URLSafeTimedSerializer(SECRET, salt=EMAIL_CHANGE_SALT).dumps(
            ["not-a-uuid", "a@b.example", 1]
        ),
        lambda token, user: URLSafeTimedSerializer(SECRET, salt=EMAIL_CHANGE_SALT).dumps(
            [user.public_id.hex, "a@b.example", "one"]
        ),
    ],
)
def test_tampered_links_are_invalid(session, user, make):
    token = token_of(request_change(session, user))
    session.commit()
    with pytest.raises(EmailChangeRefused) as refused:
        read_email_change(
            session, make(token, user), secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE
        )
    assert refused.value.reason == "invalid"


def test_a_deactivated_user_cannot_confirm(session, user):
    token = token_of(request_change(session, user))
    user.is_active = False
    session.commit()
    with pytest.raises(EmailChangeRefused) as refused:
        read_email_change(session, token, secret_key=SECRET, max_age=EMAIL_CHANGE_MAX_AGE)
    assert refused.value.reason == "invalid"


# -- password change --------------------------------------------------------------------------


def test_password_change_bumps_the_auth_version_is_audited_and_told(session, user):
    change_password(
        session,
        user,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        repeat=NEW_PASSWORD,
        actor=actor(user),
    )
    session.commit()
    session.expire_all()
    stored = session.get(User, user.id)
    assert verify_password(stored.password_hash, NEW_PASSWORD)
    assert not verify_password(stored.password_hash, PASSWORD)
    assert stored.auth_version == 2
    entry = session.scalars(sa.select(AuditLogEntry)).one()
    assert entry.action == "account.password_change"
    assert NEW_PASSWORD not in str(entry.data) and PASSWORD not in str(entry.data)
    notice = session.scalars(sa.select(OutboxEmail)).one()
    assert (notice.template, notice.to_addrs) == ("password_changed", ["ada@example.com"])
    assert NEW_PASSWORD not in notice.body_text


@pytest.mark.parametrize(
    ("current", "new", "repeat", "errors"),
    [
        ("", NEW_PASSWORD, NEW_PASSWORD, {"current_password"}),
        ("wrong password!", NEW_PASSWORD, NEW_PASSWORD, {"current_password"}),
        (PASSWORD, "short", "short", {"new_password"}),
        (PASSWORD, "", "", {"new_password"}),
        (PASSWORD, "x" * 257, "x" * 257, {"new_password"}),
        (PASSWORD, "new\x00password!!", "new\x00password!!", {"new_password"}),
        (PASSWORD, PASSWORD, PASSWORD, {"new_password"}),  # the same as before
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", {"repeat"}),
        (PASSWORD, NEW_PASSWORD, None, {"repeat"}),
        ("wrong password!", "short", "other", {"current_password", "new_password"}),
    ],
)
def test_bad_password_changes_are_refused_and_change_nothing(
    session, user, current, new, repeat, errors
):
    with pytest.raises(AccountInvalid) as refused:
        change_password(
            session,
            user,
            current_password=current,
            new_password=new,
            repeat=repeat,
            actor=actor(user),
        )
    assert set(refused.value.errors) == errors
    session.rollback()
    session.expire_all()
    stored = session.get(User, user.id)
    assert verify_password(stored.password_hash, PASSWORD)
    assert stored.auth_version == 1
    assert counts(session) == (0, 0)
