"""Every tenant page in Chromium: screenshots at 1280/375 px, axe, no console errors,
and the language switch."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from tests.e2e.conftest import AXE, login, run_axe, screenshot_both
from tests.factories.catalog import subscribe_this_month

pytestmark = pytest.mark.e2e

PAGES = [
    ("/", "overview", "Alpha Industries"),
    ("/upcoming", "upcoming", "Upcoming invoice"),
    ("/payment-methods", "payment-methods", "Payment methods"),
    ("/invoices", "invoices-list", "Invoices"),
    ("/billing-profile", "billing-profile", "Billing profile"),
    ("/settings/tokens", "tokens", "API tokens"),
]


@pytest.fixture
def subscribed(world):
    """Tenant A with a subscription, usage and a quota, so the estimate has content."""
    subscribe_this_month(
        db.session,
        world.a.tenant,
        api_price=Decimal("0.002"),
        used=Decimal(20000),
        quota=Decimal(50000),
    )
    return world


def test_every_page_renders_cleanly_with_screenshots(page, subscribed):
    login(page, subscribed.a.owner.email)
    for path, name, heading in PAGES:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        screenshot_both(page, name)
    assert page.console_errors == []


@pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (npm ci)")
def test_every_page_passes_axe(browser, live_server, subscribed):
    context = browser.new_context(base_url=live_server.url())
    page = context.new_page()
    login(page, subscribed.a.owner.email)
    state = context.storage_state()
    for path, _, _ in PAGES:
        violations = run_axe(browser, live_server.url(path), state)
        assert violations == [], (path, [(v["id"], v["help"]) for v in violations])
    context.close()


def test_error_pages_in_the_portal_look(page, world):
    login(page, world.a.owner.email)
    response = page.goto("/invoices/not-an-invoice")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_role("link", name="Go to overview")).to_be_visible()
    screenshot_both(page, "error-404")


def _german(msgid: str) -> str:
    from babel.messages.pofile import read_po

    from portal.config import ROOT

    with (ROOT / "translations/de/LC_MESSAGES/messages.po").open("rb") as po_file:
        return read_po(po_file)[msgid].string


def test_switching_language_keeps_the_page_and_is_remembered(page, subscribed):
    login(page, subscribed.a.owner.email)
    page.goto("/upcoming")
    page.get_by_label("Language").select_option("de")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(_german("Upcoming invoice"))
    assert page.url.endswith("/upcoming")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    # Amounts in German format, and the choice survives a new session.
    expect(page.locator(".card__figure").first).to_contain_text("€")
    page.get_by_role("button", name=_german("Sign out")).click()
    page.wait_for_url("**/login")  # signed out before signing in again
    login(page, subscribed.a.owner.email)
    expect(page.get_by_role("link", name=_german("Overview"), exact=True)).to_be_visible()
    screenshot_both(page, "overview-de")
