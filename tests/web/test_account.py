"""The account page: every bad input a field error with nothing written, the language
switch, the e-mail change end to end over real SMTP, and password changes ending the
other sessions while this one stays signed in."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.notifications.models import OutboxEmail
from portal.ops.models import AuditLogEntry
from portal.tenancy.models import User
from portal.tenancy.passwords import verify_password
from tests.factories.tenancy import PASSWORD, UserFactory

URL = "/account"
NEW_PASSWORD = "a much longer new password"


def written(session) -> tuple[int, int]:
    """(audit entries, outbox e-mails)."""
    session.expire_all()
    return (
        session.scalar(sa.select(sa.func.count()).select_from(AuditLogEntry)),
        session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)),
    )


def user_state(session, user: User) -> tuple:
    session.expire_all()
    stored = session.get(User, user.id)
    return stored.name, stored.locale, stored.email, stored.password_hash, stored.auth_version


def field_error(html: str, field_id: str) -> str | None:
    """The message shown at the field with ``field_id``, or None."""
    found = re.search(
        rf'<p class="field__error" id="{re.escape(field_id)}-error">([^<]*)</p>', html
    )
    return found.group(1) if found else None


def confirm_link(message) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(r"http://localhost(/account/email/confirm/\S+)", body).group(1)


def signed_in(client) -> bool:
    return client.get(URL).status_code == 200


# -- the page -----------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")
    assert client.post(URL, data={"name": "x", "language": "en"}).status_code == 302


@pytest.mark.parametrize("who", ["owner", "viewer", "admin"])
def test_every_signed_in_user_has_the_page_linked_from_the_top_bar(client, auth, world, who):
    user = {"owner": world.a.owner, "viewer": world.a.viewer, "admin": world.admin}[who]
    auth.login(user.email)
    home = client.get("/admin/" if who == "admin" else "/").get_data(as_text=True)
    assert f'href="{URL}"' in home
    page = client.get(URL)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Your account</h1>" in html
    assert f'value="{user.name}"' in html
    assert user.email in html
    assert 'aria-current="page">Account</a>' in html
    assert page.headers["Cache-Control"] == "no-store"


def test_name_and_language_are_saved_and_the_page_then_speaks_german(client, auth, world, session):
    auth.login(world.a.owner.email)
    response = client.post(URL, data={"name": "  Ada King  ", "language": "de"})
    assert response.status_code == 303 and response.location == URL
    assert user_state(session, world.a.owner)[:2] == ("Ada King", "de")
    page = client.get(URL).get_data(as_text=True)
    assert '<html lang="de">' in page
    assert "<h1>Ihr Konto</h1>" in page
    assert "Ihr Konto ist gespeichert." in page
    assert '<option selected value="de">Deutsch</option>' in page
    # And back: the same request renders its answer's redirect target in English again.
    client.post(URL, data={"name": "Ada King", "language": "en"})
    assert '<html lang="en">' in client.get(URL).get_data(as_text=True)
    actions = session.scalars(sa.select(AuditLogEntry.action)).all()
    assert actions == ["account.update", "account.update"]


# -- bad input: a message at the field, nothing written --------------------------------------


BAD_INPUT = [
    # (path, form, field id with the message, part of the message)
    (URL, {"name": "", "language": "en"}, "name", "Enter your name."),
    (URL, {"name": "x" * 201, "language": "en"}, "name", "at most 200"),
    (URL, {"name": "Ada\x00", "language": "en"}, "name", "NUL"),
    (URL, {"name": "Ada", "language": "fr"}, "account-language", "languages offered"),
    (URL, {"name": "Ada"}, "account-language", "languages offered"),
    (URL, {"name": "Ada", "language": "e\x00n"}, "account-language", "languages offered"),
    ("/account/email", {"email": "", "password": PASSWORD}, "email", "new e-mail"),
    ("/account/email", {"email": "nope", "password": PASSWORD}, "email", "valid e-mail"),
    ("/account/email", {"email": "a\x00@x.example", "password": PASSWORD}, "email", "NUL"),
    ("/account/email", {"email": "taken@example.com", "password": PASSWORD}, "email", "Another"),
    ("/account/email", {"email": "new@example.com", "password": ""}, "email-password", "Enter"),
    ("/account/email", {"email": "new@example.com", "password": "wrong!"}, "email-password", "not"),
    ("/account/email", {"email": "new@example.com"}, "email-password", "current password"),
    (
        "/account/password",
        {"current_password": "wrong!", "new_password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
        "current_password",
        "not your current password",
    ),
    (
        "/account/password",
        {"current_password": PASSWORD, "new_password": "short", "repeat": "short"},
        "new_password",
        "at least 10",
    ),
    (
        "/account/password",
        {"current_password": PASSWORD, "new_password": "x" * 300, "repeat": "x" * 300},
        "new_password",
        "at most 256",
    ),
    (
        "/account/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat": "other"},
        "repeat",
        "do not match",
    ),
    (
        "/account/password",
        {"current_password": PASSWORD, "new_password": PASSWORD, "repeat": PASSWORD},
        "new_password",
        "different",
    ),
    ("/account/password", {}, "current_password", "Enter your current password."),
]


@pytest.mark.parametrize(("path", "form", "field_id", "message"), BAD_INPUT)
def test_bad_input_is_a_field_error_and_writes_nothing(
    client, auth, world, session, mailbox, path, form, field_id, message
):
    UserFactory(email="taken@example.com")
    session.commit()
    user = world.a.owner
    auth.login(user.email)
    before = user_state(session, user)
    counts = written(session)
    response = client.post(path, data=form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    shown = field_error(html, field_id)
    assert shown is not None and message in shown, html
    assert f'id="{field_id}"' in html and 'aria-invalid="true"' in html
    assert "<title>Error: Your account" in html
    assert PASSWORD not in html and NEW_PASSWORD not in html  # passwords are not echoed
    assert user_state(session, user) == before
    assert written(session) == counts
    assert mailbox.wait_for(1, timeout=0.2) == []
    assert signed_in(client)


def test_bad_input_in_german_is_a_german_message(client, auth, world, session):
    world.a.owner.locale = "de"
    session.commit()
    auth.login(world.a.owner.email)
    html = client.post("/account/password", data={}).get_data(as_text=True)
    assert field_error(html, "current_password") == "Geben Sie Ihr aktuelles Passwort ein."


# -- e-mail change ----------------------------------------------------------------------------


def test_email_change_end_to_end_over_smtp(app, client, auth, world, session, mailbox):
    user = world.a.owner
    old_email = user.email
    auth.login(old_email)
    other = app.test_client()
    other.post("/login", data={"email": old_email, "password": PASSWORD})
    assert signed_in(other)

    response = client.post(
        "/account/email", data={"email": " Ada@New.Example ", "password": PASSWORD}
    )
    assert response.status_code == 303
    [request] = mailbox.wait_for(1)
    assert request["To"] == "ada@new.example"
    assert request["Subject"] == "Confirm your new e-mail address for the billing portal"
    assert request.get_body(("html",)) is not None
    link = confirm_link(request)
    page = client.get(URL).get_data(as_text=True)
    assert "We have sent a link to ada@new.example" in page
    assert user_state(session, user)[2] == old_email  # not yet

    # Opening the link shows what it changes and changes nothing (mail scanners open links).
    shown = client.get(link)
    assert shown.status_code == 200
    assert "ada@new.example" in shown.get_data(as_text=True)
    assert user_state(session, user)[2] == old_email

    done = client.post(link)
    assert done.status_code == 303 and done.location == URL
    assert user_state(session, user)[2] == "ada@new.example"
    notice = mailbox.wait_for(2)[1]
    assert notice["To"] == old_email
    assert "was changed" in notice["Subject"]
    assert "ada@new.example" in notice.get_body(("plain",)).get_content()

    # This session stays signed in; the other one ends with the old address.
    assert "Your e-mail address is now ada@new.example." in client.get(URL).get_data(as_text=True)
    assert not signed_in(other)
    assert client.post("/logout").status_code == 303
    assert auth.login(old_email).status_code == 200  # refused
    assert auth.login("ada@new.example").status_code == 303

    # The link works once.
    for method in ("get", "post"):
        reused = getattr(client, method)(link)
        assert reused.status_code == 410
        html = reused.get_data(as_text=True)
        assert "This confirmation link can no longer be used" in html
        assert "Your e-mail address was not changed." in html
    actions = session.scalars(sa.select(AuditLogEntry.action).order_by(AuditLogEntry.id)).all()
    assert actions == ["account.email_change_request", "account.email_change"]


def _requested_link(client, auth, world, mailbox, email="ada@new.example") -> str:
    auth.login(world.a.owner.email)
    client.post("/account/email", data={"email": email, "password": PASSWORD})
    return confirm_link(mailbox.wait_for(1)[0])


def test_confirming_signed_out_sends_to_sign_in_with_the_new_address(
    client, auth, world, session, mailbox
):
    link = _requested_link(client, auth, world, mailbox)
    client.post("/logout")
    response = client.post(link)
    assert response.status_code == 303 and response.location == "/login"
    login = client.get("/login").get_data(as_text=True)
    assert "Your e-mail address is now ada@new.example. Sign in with it." in login
    assert user_state(session, world.a.owner)[2] == "ada@new.example"


@pytest.mark.parametrize(
    ("make", "status", "text"),
    [
        (
            lambda link: link[:-3] + ("xyz" if not link.endswith("xyz") else "abc"),
            404,
            "does not work",
        ),
        (lambda link: "/account/email/confirm/not-a-token", 404, "does not work"),
        (lambda link: link + "%00", 404, "does not work"),
    ],
)
def test_tampered_links_show_a_clear_page_and_change_nothing(
    client, auth, world, session, mailbox, make, status, text
):
    link = _requested_link(client, auth, world, mailbox)
    before, counts = user_state(session, world.a.owner), written(session)
    for method in ("get", "post"):
        response = getattr(client, method)(make(link))
        assert response.status_code == status
        html = response.get_data(as_text=True)
        assert text in html and "Your e-mail address was not changed." in html
    assert user_state(session, world.a.owner) == before
    assert written(session) == counts


def test_an_expired_link_shows_a_clear_page_and_changes_nothing(
    app, client, auth, world, session, mailbox
):
    link = _requested_link(client, auth, world, mailbox)
    app.config["EMAIL_CHANGE_MAX_AGE"] = -1
    before, counts = user_state(session, world.a.owner), written(session)
    response = client.post(link)
    assert response.status_code == 410
    assert "This confirmation link has expired" in response.get_data(as_text=True)
    assert user_state(session, world.a.owner) == before
    assert written(session) == counts


def test_an_address_taken_before_confirming_is_refused(client, auth, world, session, mailbox):
    link = _requested_link(client, auth, world, mailbox)
    UserFactory(email="ada@new.example")
    session.commit()
    before, counts = user_state(session, world.a.owner), written(session)
    response = client.post(link)
    assert response.status_code == 409
    assert "Another account uses ada@new.example by now" in response.get_data(as_text=True)
    assert user_state(session, world.a.owner) == before
    assert written(session) == counts


def test_a_link_opened_by_another_signed_in_user_changes_nothing(
    client, auth, world, session, mailbox
):
    link = _requested_link(client, auth, world, mailbox)
    client.post("/logout")
    auth.login(world.a.viewer.email)
    before = user_state(session, world.a.owner)
    response = client.post(link)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "This link is for another account" in html
    assert world.a.owner.email not in html and world.a.owner.name not in html
    assert user_state(session, world.a.owner) == before


def test_a_password_change_ends_an_outstanding_link(client, auth, world, session, mailbox):
    link = _requested_link(client, auth, world, mailbox)
    client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    )
    assert client.post(link).status_code == 410
    assert user_state(session, world.a.owner)[2] == world.a.owner.email


# -- password change --------------------------------------------------------------------------


def test_password_change_ends_other_sessions_and_keeps_this_one(
    app, client, auth, world, session, mailbox
):
    user = world.a.owner
    auth.login(user.email)
    other = app.test_client()
    other.post("/login", data={"email": user.email, "password": PASSWORD})
    assert signed_in(other)

    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    )
    assert response.status_code == 303 and response.location == URL
    page = client.get(URL)
    assert page.status_code == 200  # still signed in
    assert "Every other session of your account is signed out." in page.get_data(as_text=True)
    assert client.get("/").status_code == 200
    assert other.get(URL).status_code == 302  # the old cookie is signed out
    assert other.get("/").status_code == 302

    [notice] = mailbox.wait_for(1)
    assert notice["To"] == user.email
    assert notice["Subject"] == "The password of your billing portal account was changed"
    assert NEW_PASSWORD not in notice.get_body(("plain",)).get_content()
    stored = session.get(User, user.id)
    assert verify_password(stored.password_hash, NEW_PASSWORD)
    assert session.scalars(sa.select(AuditLogEntry.action)).all() == ["account.password_change"]

    fresh = app.test_client()
    assert fresh.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 200
    assert (
        fresh.post("/login", data={"email": user.email, "password": NEW_PASSWORD}).status_code
        == 303
    )


def test_keep_me_signed_in_survives_the_own_password_change(app, client, world, session):
    user = world.a.owner
    client.post("/login", data={"email": user.email, "password": PASSWORD, "remember": "y"})
    client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
    )
    remember = client.get_cookie("remember_token")
    assert remember is not None
    # A browser restart: the session cookie is gone, the renewed remember cookie signs in.
    client.delete_cookie("session")
    assert signed_in(client)


@pytest.mark.parametrize("path", [URL, "/account/email", "/account/password"])
def test_csrf_is_enforced(app_config, world, path):
    app_config["WTF_CSRF_ENABLED"] = True
    app = create_app(app_config)
    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    client.post(
        "/login", data={"email": world.a.owner.email, "password": PASSWORD, "csrf_token": token}
    )
    response = client.post(
        path,
        data={
            "name": "x",
            "language": "de",
            "email": "n@example.com",
            "password": PASSWORD,
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "repeat": NEW_PASSWORD,
        },
    )
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(User, world.a.owner.id).name == world.a.owner.name
        db.session.remove()


# -- at once ----------------------------------------------------------------------------------


def test_one_link_confirmed_many_times_at_once_changes_the_address_once(
    app, client, auth, world, session, mailbox
):
    from tests.races.conftest import fire  # the suite's barrier-released racers

    link = _requested_link(client, auth, world, mailbox)
    codes = sorted(fire(app, lambda racer, i: racer.post(link).status_code, racers=8))
    assert codes == [303] + [410] * 7
    assert user_state(session, world.a.owner)[2] == "ada@new.example"
    actions = session.scalars(sa.select(AuditLogEntry.action)).all()
    assert actions.count("account.email_change") == 1
    templates = session.scalars(sa.select(OutboxEmail.template)).all()
    assert templates.count("email_changed") == 1


def test_two_users_confirming_one_address_at_once_one_gets_it(
    app, client, auth, world, session, mailbox
):
    from tests.races.conftest import fire  # the suite's barrier-released racers

    links = []
    for user in (world.a.owner, world.b.owner):
        auth.login(user.email)
        client.post("/account/email", data={"email": "shared@new.example", "password": PASSWORD})
        links.append(confirm_link(mailbox.wait_for(len(links) + 1)[-1]))
        client.post("/logout")
    codes = sorted(fire(app, lambda racer, i: racer.post(links[i]).status_code, racers=2))
    assert codes == [303, 409]
    owners = session.scalars(sa.select(User).where(User.email == "shared@new.example")).all()
    assert len(owners) == 1
