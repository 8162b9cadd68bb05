"""A tenant user signs in, sees the landing page, and manages tokens, in real Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import AXE, run_axe
from tests.factories.tenancy import PASSWORD

pytestmark = pytest.mark.e2e


def _login(page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def test_sign_in_landing_tokens_and_sign_out(page, world, tmp_path):
    _login(page, world.a.owner.email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Alpha Industries")
    expect(page.locator(".card--primary .card__figure")).to_have_text("€102.94")
    expect(page.get_by_role("row").filter(has_text=world.a.invoice.number)).to_be_visible()
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True, caret="initial")

    # htmx is loaded under the CSP (nonce) and boosts navigation.
    assert page.evaluate("() => typeof htmx") == "object"
    page.get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(re.compile(r"/settings/tokens$"))
    page.get_by_label("Name").fill("Warehouse sync")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("code.secret")
    expect(secret).to_have_text(re.compile(r"^tbp_"))
    expect(page.get_by_role("row").filter(has_text="Warehouse sync")).to_be_visible()
    page.screenshot(path=str(tmp_path / "tokens.png"), full_page=True, caret="initial")

    # Revoking asks for confirmation (hx-confirm), then the row shows "Revoked".
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("row").filter(has_text="Warehouse sync").get_by_role(
        "button", name="Revoke"
    ).click()
    expect(page.get_by_role("row").filter(has_text="Warehouse sync")).to_contain_text("Revoked")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to billing")
    assert page.console_errors == []  # no CSP violation, no missing asset


def test_viewer_sees_no_controls(page, world):
    _login(page, world.a.viewer.email)
    page.goto("/settings/tokens")
    expect(page.get_by_role("row").filter(has_text=world.a.token.name)).to_be_visible()
    expect(page.get_by_role("button", name="Create token")).to_have_count(0)
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)


def test_narrow_screen_has_no_horizontal_page_scroll(browser, live_server, world):
    context = browser.new_context(
        base_url=live_server.url(), viewport={"width": 360, "height": 740}
    )
    page = context.new_page()
    _login(page, world.a.owner.email)
    for path in ("/", "/settings/tokens"):
        page.goto(path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 360, f"{path} is {width}px wide at 360px"
    context.close()


@pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (npm ci)")
def test_pages_have_no_serious_accessibility_violations(browser, live_server, world):
    context = browser.new_context(base_url=live_server.url())
    page = context.new_page()
    assert run_axe(browser, live_server.url("/login"), None) == []
    _login(page, world.a.owner.email)
    expect(page.get_by_role("heading", level=1)).to_have_text("Alpha Industries")
    state = context.storage_state()
    for path in ("/", "/settings/tokens"):
        violations = run_axe(browser, live_server.url(path), state)
        assert violations == [], [(v["id"], v["help"]) for v in violations]
    context.close()
