"""Login, logout, password reset over real SMTP, session protection and rate limits."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from portal.notifications.models import OutboxEmail, OutboxStatus
from portal.tenancy.models import User
from tests.factories.tenancy import PASSWORD


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b'name="email"' in response.data


def test_anonymous_is_sent_to_login_with_next(client):
    response = client.get("/settings/tokens")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=/settings/tokens")


def test_login_and_landing_page_shows_tenant_and_open_amount(client, auth, world):
    response = auth.login(world.a.owner.email)
    assert response.status_code == 303
    assert response.location == "/"
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Alpha Industries" in html
    # 49.00 + 3 × 12.50 = 86.50 net, 19 % VAT 16.44 → 102.94 open
    assert "€102.94" in html
    assert world.a.invoice.number in html
    assert "Bravo Logistics" not in html


def test_wrong_password_is_refused_without_saying_which_part(client, auth, world):
    response = auth.login(world.a.owner.email, "wrong password!!")
    assert response.status_code == 200
    assert "E-mail or password is wrong." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    unknown = auth.login("nobody@example.com", "whatever-password")
    assert "E-mail or password is wrong." in unknown.get_data(as_text=True)


def test_inactive_user_cannot_log_in(client, auth, world, session):
    world.a.owner.is_active = False
    session.commit()
    auth.login(world.a.owner.email)
    assert client.get("/").status_code == 302


def test_login_follows_only_local_next(client, world):
    data = {"email": world.a.owner.email, "password": PASSWORD}
    ok = client.post("/login", data={**data, "next": "/settings/tokens"})
    assert ok.location == "/settings/tokens"
    client.post("/logout")
    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = client.post("/login", data={**data, "next": evil})
        assert response.location == "/", evil
        client.post("/logout")


def test_logout_ends_the_session(client, auth, world):
    auth.login(world.a.owner.email)
    assert client.get("/").status_code == 200
    response = auth.logout()
    assert response.status_code == 303
    assert client.get("/").status_code == 302


def test_logout_requires_post(client, auth, world):
    auth.login(world.a.owner.email)
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_platform_admin_without_tenant_lands_in_admin(client, auth, world):
    response = auth.login(world.admin.email)
    assert response.location == "/admin/"
    assert client.get("/").location == "/admin/"
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "Alpha Industries" in page.get_data(as_text=True)


def _reset_link(message) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(r"http://localhost(/password/reset/\S+)", body).group(1)


def test_password_reset_by_emailed_signed_token(client, auth, world, mailbox, session):
    response = client.post("/password/forgot", data={"email": world.a.owner.email.upper()})
    assert response.status_code == 303
    [message] = mailbox.wait_for(1)
    assert message["To"] == world.a.owner.email
    assert "Reset your billing portal password" in message["Subject"]
    assert message.get_body(("html",)) is not None
    link = _reset_link(message)
    assert session.scalar(sa.select(OutboxEmail.status)) == OutboxStatus.SENT

    assert client.get(link).status_code == 200
    mismatch = client.post(link, data={"password": "new password 123", "confirm": "other one 123"})
    assert "Passwords do not match." in mismatch.get_data(as_text=True)
    short = client.post(link, data={"password": "short", "confirm": "short"})
    assert short.status_code == 200 and b"field__error" in short.data

    done = client.post(link, data={"password": "new password 123", "confirm": "new password 123"})
    assert done.status_code == 303 and done.location == "/login"
    # The token is single-use: the password hash it was bound to has changed.
    again = client.get(link)
    assert again.status_code == 303 and again.location == "/password/forgot"
    assert auth.login(world.a.owner.email).status_code == 200  # old password refused
    assert auth.login(world.a.owner.email, "new password 123").status_code == 303


def test_reset_for_unknown_email_answers_the_same_and_sends_nothing(client, mailbox):
    response = client.post("/password/forgot", data={"email": "ghost@example.com"})
    assert response.status_code == 303
    assert mailbox.wait_for(1, timeout=0.3) == []


def test_reset_token_expires(client, world, app, mailbox):
    client.post("/password/forgot", data={"email": world.a.owner.email})
    link = _reset_link(mailbox.wait_for(1)[0])
    app.config["PASSWORD_RESET_MAX_AGE"] = -1
    assert client.get(link).location == "/password/forgot"


def test_tampered_reset_token_is_refused(client):
    assert client.get("/password/reset/not-a-token").location == "/password/forgot"


def test_password_change_ends_other_sessions(app, client, auth, world, session):
    auth.login(world.a.owner.email)
    other = app.test_client()
    other.post("/login", data={"email": world.a.owner.email, "password": PASSWORD})
    assert other.get("/").status_code == 200
    from portal.tenancy.services import set_password

    user = session.get(User, world.a.owner.id)
    set_password(user, "a brand new password")
    session.commit()
    assert other.get("/").status_code == 302
    assert client.get("/").status_code == 302


def test_login_is_rate_limited(app_config, world):
    app_config.update(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    app = create_app(app_config)
    client = app.test_client()
    codes = [
        client.post(
            "/login", data={"email": world.a.owner.email, "password": "nope nope nope"}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    # GET of the form is not limited, and the 429 page says what to do.
    assert client.get("/login").status_code == 200
    limited = client.post("/login", data={"email": world.a.owner.email, "password": PASSWORD})
    assert limited.status_code == 429
    assert "Please wait a minute" in limited.get_data(as_text=True)
    with app.app_context():
        db.session.remove()


def test_password_reset_is_rate_limited(app_config, world, mailbox):
    app_config.update(RATELIMIT_ENABLED=True, RATELIMIT_PASSWORD_RESET="2 per hour")
    app = create_app(app_config)
    client = app.test_client()
    codes = [
        client.post("/password/forgot", data={"email": "x@example.com"}).status_code
        for _ in range(3)
    ]
    assert codes == [303, 303, 429]


@pytest.mark.parametrize("path", ["/logout", "/tenants/switch", "/language", "/settings/tokens"])
def test_csrf_is_enforced_on_state_changing_forms(app_config, world, path):
    app_config["WTF_CSRF_ENABLED"] = True
    app = create_app(app_config)
    client = app.test_client()
    # Log in with a real CSRF token taken from the form.
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    login = client.post(
        "/login", data={"email": world.a.owner.email, "password": PASSWORD, "csrf_token": token}
    )
    assert login.status_code == 303
    response = client.post(
        path,
        data={
            "tenant": str(world.a.tenant.public_id),
            "name": "x",
            "access": "billing:read",
            "language": "de",
        },
    )
    assert response.status_code == 400
    assert client.get("/").status_code == 200  # still logged in: logout was refused


def test_login_upgrades_a_hash_made_with_other_argon2_parameters(client, auth, world, session):
    from argon2 import PasswordHasher, extract_parameters

    from portal.tenancy import passwords

    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash(PASSWORD)
    world.a.owner.password_hash = old
    session.commit()
    assert auth.login(world.a.owner.email).status_code == 303
    session.expire_all()
    upgraded = session.get(User, world.a.owner.id).password_hash
    assert upgraded != old
    params = extract_parameters(upgraded)
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        passwords.ARGON2_TIME_COST,
        passwords.ARGON2_MEMORY_KIB,
        passwords.ARGON2_PARALLELISM,
    )
    assert passwords.verify_password(upgraded, PASSWORD)
