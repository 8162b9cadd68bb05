"""An owner raises seats on the subscription page, sees the invoice preview and confirms;
cancels at period end with a reason and resumes — in real Chromium, English and German,
with screenshots at 1280 and 375 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, run_axe, screenshot_both
from tests.web.selfserve_support import self_serve_subscription

pytestmark = pytest.mark.e2e


def _amounts_fit(page, selector: str) -> None:
    """Every element matching ``selector`` is inside the viewport horizontally."""
    width = page.viewport_size["width"]
    for box in page.locator(selector).evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })"
    ):
        assert box[0] >= 0 and box[1] <= width + 0.5, (selector, box, width)


def test_owner_raises_seats_cancels_and_resumes(page, browser, world):
    ss = self_serve_subscription(world.a.tenant)
    login(page, world.a.owner.email)
    page.get_by_role("link", name="Subscription", exact=True).click()
    expect(page).to_have_url(re.compile(r"/subscription$"))
    card = page.locator(f"#s-{ss.uid}")
    expect(card).to_contain_text("Cloud · Seat")
    expect(card).to_contain_text("€60.00")
    screenshot_both(page, "subscription-en")
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        _amounts_fit(page, ".subscription-item__amount, .subscription__total")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="Change Seat").click()
    page.get_by_label("New quantity").fill("5")
    page.get_by_role("button", name="Preview the invoice").click()
    expect(page.locator("#preview-total")).to_be_visible()
    expect(page.locator("#preview-lines")).to_contain_text("Seat: 3 × used until")
    expect(page.locator("#preview-difference")).to_contain_text("+€")
    screenshot_both(page, "subscription-preview-en")
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        _amounts_fit(page, "#preview-total, #preview-difference, #preview-lines td.num")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Confirm the change").click()
    expect(page.locator(".flash--success")).to_contain_text("Your subscription is changed")
    expect(card.locator(".subscription-item").nth(1)).to_contain_text("5")
    expect(card).to_contain_text("quantity 3 → 5")

    page.get_by_role("link", name="Cancel at period end").click()
    page.get_by_role("button", name="Cancel at period end").click()
    expect(page.locator("#reason-error")).to_have_text("Choose a reason.")
    page.get_by_label("Missing features").check()
    page.get_by_label(re.compile("Anything you want to tell us")).fill("We need SSO")
    screenshot_both(page, "subscription-cancel-en")
    page.get_by_role("button", name="Cancel at period end").click()
    expect(card.locator(".subscription__notice")).to_contain_text("Your subscription ends on")
    expect(card).to_contain_text("Missing features – We need SSO")
    screenshot_both(page, "subscription-ending-en")
    page.goto("/")
    expect(page.locator(".subscription-notice")).to_contain_text("Your subscription ends on")
    page.goto("/subscription")
    page.get_by_role("button", name="Keep my subscription").click()
    expect(page.locator(".flash--success")).to_contain_text("Your subscription continues")
    expect(card).to_contain_text("Renews on")

    # German: the same pages in the other language.
    page.get_by_label("Language").select_option("de")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Abonnement")
    expect(card).to_contain_text("Lizenzpreise pro Zeitraum, netto")
    expect(card).to_contain_text("80,00")
    screenshot_both(page, "subscription-de")
    page.get_by_role("link", name="Seat ändern").click()
    page.get_by_label("Neue Menge").fill("6")
    page.get_by_role("button", name="Rechnung voransehen").click()
    expect(page.locator("#preview-total")).to_be_visible()
    screenshot_both(page, "subscription-preview-de")
    page.get_by_role("button", name="Änderung bestätigen").click()
    expect(page.locator(".flash--success")).to_contain_text("Ihr Abonnement ist geändert")
    page.get_by_role("link", name="Zum Ende des Zeitraums kündigen").click()
    page.get_by_label("Zu teuer").check()
    screenshot_both(page, "subscription-cancel-de")
    page.get_by_role("button", name="Zum Ende des Zeitraums kündigen").click()
    expect(card.locator(".subscription__notice")).to_contain_text("Ihr Abonnement endet am")
    screenshot_both(page, "subscription-ending-de")
    assert page.console_errors == []

    violations = run_axe(browser, page.url, page.context.storage_state())
    assert violations == [], violations


def test_viewer_sees_the_subscription_without_controls(page, world):
    ss = self_serve_subscription(world.a.tenant)
    login(page, world.a.viewer.email)
    page.goto("/subscription")
    expect(page.locator(f"#s-{ss.uid}")).to_contain_text("Cloud · Seat")
    expect(page.get_by_role("link", name="Change Seat")).to_have_count(0)
    expect(page.get_by_role("link", name="Cancel at period end")).to_have_count(0)
