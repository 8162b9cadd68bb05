"""Security headers, CSP nonces and no third-party origins in pages."""

from __future__ import annotations

import re

from portal import create_app


def test_security_headers_and_nonce(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'nonce="{nonce}"' in response.get_data(as_text=True)
    assert "stripe" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert client.get("/login").headers["Content-Security-Policy"] != csp  # fresh per request


def test_stripe_origins_only_when_stripe_is_configured(app_config):
    app_config["STRIPE_PUBLISHABLE_KEY"] = "pk_test_123"
    client = create_app(app_config).test_client()
    assert "https://js.stripe.com" in client.get("/login").headers["Content-Security-Policy"]


def test_pages_load_nothing_from_other_origins(client, auth, world):
    auth.login(world.a.owner.email)
    for path in ("/login", "/", "/settings/tokens", "/password/forgot"):
        html = client.get(path).get_data(as_text=True)
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not url.startswith(("http:", "https:", "//")), f"{path}: {url}"


def test_session_cookie_flags(client, world):
    response = client.post(
        "/login", data={"email": world.a.owner.email, "password": "correct horse battery"}
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_cookies_are_secure(monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)


# -- production headers ------------------------------------------------------------------------


def test_hsts_outside_debug_and_tests(app_config):
    production = create_app({**app_config, "TESTING": False})
    header = production.test_client().get("/login").headers["Strict-Transport-Security"]
    assert header == "max-age=31536000"  # one year by default
    longer = create_app({**app_config, "TESTING": False, "HSTS_MAX_AGE": 63072000})
    assert longer.test_client().get("/api/v1/billing/overview").headers[
        "Strict-Transport-Security"
    ] == ("max-age=63072000")  # JSON answers (here a 401) carry it too


def test_hsts_is_off_with_zero_and_in_debug_and_tests(client, app_config):
    assert "Strict-Transport-Security" not in client.get("/login").headers  # TESTING
    off = create_app({**app_config, "TESTING": False, "HSTS_MAX_AGE": 0})
    assert "Strict-Transport-Security" not in off.test_client().get("/login").headers
    debug = create_app({**app_config, "TESTING": False, "DEBUG": True})
    assert "Strict-Transport-Security" not in debug.test_client().get("/login").headers


def test_authentication_pages_are_not_stored(app, client, auth, world):
    from portal.tenancy.services import make_reset_token

    token = make_reset_token(world.a.owner, app.config["SECRET_KEY"])
    answers = {
        "GET /login": client.get("/login"),
        "POST /login (wrong)": client.post(
            "/login", data={"email": world.a.owner.email, "password": "wrong password"}
        ),
        "GET /password/forgot": client.get("/password/forgot"),
        "POST /password/forgot": client.post("/password/forgot", data={"email": "x@y.example"}),
        "GET /password/reset": client.get(f"/password/reset/{token}"),
        "POST /password/reset": client.post(f"/password/reset/{token}", data={"password": "x"}),
        "GET /password/reset (bad token)": client.get("/password/reset/not-a-token"),
    }
    auth.login(world.a.owner.email)
    answers["POST /logout"] = auth.logout()
    for name, response in answers.items():
        assert response.headers.get("Cache-Control") == "no-store", name
    auth.login(world.a.owner.email)
    assert "no-store" not in client.get("/invoices").headers.get("Cache-Control", "")


def _client_seen(app):
    from flask import request

    app.add_url_rule(
        "/_test/client", "test_client_seen", lambda: f"{request.remote_addr} {request.scheme}"
    )
    return app.test_client()


def test_trusted_proxies_give_the_client_address_and_scheme(app_config):
    headers = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7", "X-Forwarded-Proto": "https"}
    direct = _client_seen(create_app(app_config))
    assert direct.get("/_test/client", headers=headers).text == "127.0.0.1 http"
    proxied = _client_seen(create_app({**app_config, "TRUSTED_PROXIES": 1}))
    # One trusted proxy: the address it added (the last), not what the client claimed.
    assert proxied.get("/_test/client", headers=headers).text == "203.0.113.7 https"
    two = _client_seen(create_app({**app_config, "TRUSTED_PROXIES": 2}))
    headers["X-Forwarded-Proto"] = "https, http"  # each proxy adds what it saw
    assert two.get("/_test/client", headers=headers).text == "198.51.100.9 https"


def test_rate_limits_count_per_client_behind_a_proxy(app_config, world):
    app_config.update(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="2 per minute", TRUSTED_PROXIES=1)
    client = create_app(app_config).test_client()

    def attempt(address: str) -> int:
        return client.post(
            "/login",
            data={"email": world.a.owner.email, "password": "wrong password"},
            headers={"X-Forwarded-For": address},
        ).status_code

    assert [attempt("203.0.113.7") for _ in range(3)] == [200, 200, 429]
    assert attempt("203.0.113.8") == 200  # another client behind the same proxy
