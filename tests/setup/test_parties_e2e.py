"""In headless Chromium: an admin sets up a seller (with a logo) and a company through the
pages, sees inline errors, and archives the company after confirming; English and German,
screenshots at 1280 and 375 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, screenshot_both
from tests.setup.logos import CLEAN_SVG


def test_admin_sets_up_a_seller_and_a_company(page, world, tmp_path):  # noqa: F811
    login(page, world.admin.email)
    page.goto("/admin/")
    page.get_by_role("link", name="Sellers").click()
    page.get_by_role("link", name="New seller").click()
    page.get_by_label("Legal name").fill("Example Cloud GmbH")
    page.get_by_label("Street and number").fill("Torstraße 1")
    page.get_by_label("Postal code").fill("10119")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("E-mail printed on invoices").fill("billing@example.com")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 01")
    page.get_by_role("button", name="Create seller").click()
    expect(page.locator("#iban-error")).to_contain_text("not a valid IBAN")
    screenshot_both(page, "admin-seller-errors")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Create seller").click()
    expect(page.get_by_text("Seller Example Cloud GmbH created.")).to_be_visible()

    logo = tmp_path / "logo.svg"
    logo.write_bytes(CLEAN_SVG)
    page.get_by_label("PNG or SVG file, at most 512 KB").set_input_files(str(logo))
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_text("Logo saved.")).to_be_visible()
    expect(page.locator(".seller-logo img")).to_be_visible()
    screenshot_both(page, "admin-seller")

    page.get_by_role("link", name="Companies").click()
    page.locator("#new-company summary").click()
    page.locator("#company-name").fill("Nordlicht Software")
    page.locator("#company-seller").select_option(label="Example Cloud GmbH")
    page.get_by_label("Invoice addressee").fill("Nordlicht Software GmbH")
    page.locator("#company-billing_profile-address_line1").fill("Hafenstraße 3")
    page.locator("#company-billing_profile-postal_code").fill("20457")
    page.locator("#company-billing_profile-city").fill("Hamburg")
    page.locator("#company-billing_profile-country").select_option("DE")
    page.get_by_label("Invoices are e-mailed to").fill("ap@nordlicht.example")
    page.locator("#company-billing_profile-vat_id").fill("DE000")
    page.get_by_role("button", name="Create company").click()
    expect(page.locator("#billing_profile-vat_id-error")).to_contain_text("not a valid VAT ID")
    screenshot_both(page, "admin-new-company-errors")
    page.locator("#company-billing_profile-vat_id").fill("DE136695976")
    page.get_by_role("button", name="Create company").click()
    expect(page.get_by_text("Company Nordlicht Software created.")).to_be_visible()
    expect(page.get_by_role("heading", name="Nordlicht Software")).to_be_visible()

    page.get_by_role("link", name="Archive").click()
    expect(page.get_by_role("heading", name="Archive Nordlicht Software?")).to_be_visible()
    screenshot_both(page, "admin-archive-confirm")
    page.get_by_role("button", name="Archive company").click()
    expect(page.get_by_text("Nordlicht Software is archived")).to_be_visible()
    page.goto("/admin/?status=all")
    expect(page.locator("#company-results")).to_contain_text("Archived")
    screenshot_both(page, "admin-companies")


@pytest.mark.parametrize("path", ["/admin/sellers", "/admin/sellers/new", "/admin/"])
def test_setup_pages_in_german(page, world, path):  # noqa: F811
    login(page, world.admin.email)
    page.goto("/admin/")
    page.get_by_label("Language", exact=True).select_option("de")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    page.goto(path)
    expect(page.get_by_role("link", name="Verkäufer", exact=True)).to_be_visible()
    if path == "/admin/":
        page.locator("#new-company summary").click()
        expect(page.get_by_role("button", name="Firma anlegen")).to_be_visible()
    name = {"/admin/sellers": "sellers", "/admin/sellers/new": "seller-new", "/admin/": "companies"}
    screenshot_both(page, f"admin-{name[path]}-de")
