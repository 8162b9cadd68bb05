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


def test_coupon_added_and_removed_with_confirmation(page, live_server, world):
    from portal.catalog.coupons import create_coupon
    from portal.catalog.subscriptions import NewItem, create_subscription
    from tests.setup.subs_support import ACTOR, D

    shop = Shop(world.a.tenant.seller)
    company = world.a.tenant
    coupon = create_coupon(
        db.session,
        company.seller,
        {
            "code": "WELCOME",
            "name": "Welcome",
            "percent_off": "15",
            "duration": "repeating",
            "duration_periods": 3,
        },
        ACTOR,
    )
    create_subscription(
        db.session,
        company,
        ACTOR,
        items=[NewItem(shop.seat, D(3))],
        start=dt.date.today().replace(day=1),
    )
    db.session.commit()
    login(page, world.admin.email)
    page.goto(f"/admin/companies/{company.public_id}/subscriptions")
    page.locator(".subscription").get_by_role("link", name="Coupons").click()
    page.get_by_role("button", name="Add coupon").click()
    expect(page.locator("#coupon-error")).to_have_text("Choose a coupon.")
    page.locator("#coupon").select_option(str(coupon.public_id))
    page.get_by_role("button", name="Add coupon").click()
    expect(page.get_by_text("the next invoices carry its discount")).to_be_visible()
    expect(page.locator("#applied-coupons")).to_contain_text("15 %")
    expect(page.locator("#applied-coupons")).to_contain_text("3 invoices")
    screenshot_both(page, "subs-coupons")
    page.get_by_role("link", name="Remove").click()
    screenshot_both(page, "subs-coupon-remove")
    page.locator("#confirm-button").click()
    expect(page.locator("#applied-coupons")).to_contain_text("Removed on")
