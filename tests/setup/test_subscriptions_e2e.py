"""Subscriptions and charges in the admin console, in real Chromium, English and German."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from tests.e2e.conftest import login, screenshot_both
from tests.setup.subs_support import Shop

pytestmark = pytest.mark.e2e



def test_subscribe_change_with_preview_cancel_and_charge(page, live_server, world):
    shop = Shop(world.a.tenant.seller)
    db.session.commit()
    company = world.a.tenant
    login(page, world.admin.email)
    page.goto(f"/admin/companies/{company.public_id}")
    page.locator("#manage-subscriptions").click()
    page.locator("#new-subscription").click()
    page.locator("#items-0-price").select_option(str(shop.seat.public_id))
    page.locator("#items-0-quantity").fill("0")
    page.locator("#items-1-price").select_option(str(shop.api.public_id))
    page.get_by_role("button", name="Create subscription").click()
    expect(page.locator("#items-0-quantity-error")).to_have_text(
        "The quantity must be greater than zero."
    )
    screenshot_both(page, "subs-new-error")
    page.locator("#items-0-quantity").fill("3")
    page.locator("#start").fill(dt.date.today().replace(day=1).isoformat())
    page.get_by_role("button", name="Create subscription").click()
    expect(page.get_by_text("is created")).to_be_visible()
    screenshot_both(page, "subs-list")

    page.get_by_role("link", name="Change").click()
    page.locator("#quantity").fill("5")
    page.locator("#preview-button").click()
    expect(page.locator("#preview-lines")).to_be_visible()
    screenshot_both(page, "subs-preview")
    page.locator("#confirm-button").click()
    expect(page.get_by_text("the next invoice prorates it")).to_be_visible()

    page.get_by_role("link", name="Cancel subscription").click()
    page.get_by_label("Reason").fill("Moving to another provider")
    screenshot_both(page, "subs-cancel")
    page.locator("#confirm-button").click()
    expect(page.get_by_text("Moving to another provider")).to_be_visible()

    page.goto(f"/admin/companies/{company.public_id}/charges")
    page.get_by_label("Description").fill("Setup")
    page.locator("#unit_price").fill("-1")
    page.get_by_role("button", name="Add charge").click()
    expect(page.locator("#unit_price-error")).to_be_visible()
    screenshot_both(page, "charges-error")

    world.admin.locale = "de"
    db.session.commit()
    for path, name in (
        (f"/admin/companies/{company.public_id}/subscriptions", "subs-list-de"),
        (f"/admin/companies/{company.public_id}/subscriptions/new", "subs-new-de"),
        (f"/admin/companies/{company.public_id}/charges", "charges-de"),
        (f"/admin/companies/{company.public_id}", "company-de"),
    ):
        page.goto(path)
        screenshot_both(page, name)
    expect(page.get_by_role("heading", name="Einmalige Belastung hinzufügen")).to_be_visible()
    assert not page.console_errors
