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
