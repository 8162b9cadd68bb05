"""From an empty database to a correct invoice through the admin console's pages, in headless
Chromium.

`flask --app wsgi create-admin` is the only thing that happens outside the browser: then the
operator signs in and, by filling forms and clicking, creates a seller, a product with a
seat price and a graduated metered price, a company with its billing profile and a
subscription, records the month's usage, generates the invoice from the company page and
reads it: the same set-up and the same hand-computed 80.92 EUR as
tests/setup/test_empty_install_api.py. Screenshots at 1280 px go to
artifacts/e2e/empty-install/; the forms are then opened in German and every label, button
and heading still in English is written to untranslated-de.txt there.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.extensions import db
from portal.tenancy.models import Seller, User

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "e2e" / "empty-install"
TODAY = dt.date.today()
MONTH = TODAY.replace(day=1)
EMAIL = "ops@operator.example"
PASSWORD = "Correct-horse-battery-9"


def shot(page, name: str) -> None:
    """The whole page at 1280 px wide, for people to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


def _texts(page) -> list[str]:
    """The words a form shows: labels, legends, buttons, headings, hints, column heads and
    options (but not the lists of countries and languages, which are names)."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll(
              'main label, main legend, main button, main h1, main h2, main th[scope=col],'
              + ' main select:not([id$=country]):not([id$=language]) option,'
              + ' main .field__hint, main .flash, main p.muted'))
            .map(e => e.textContent.replace(/\\s+/g, ' ').trim()).filter(t => t)"""
    )


def _sign_in(page) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def test_an_operator_bills_a_company_from_an_empty_install_through_the_pages(
    page, live_server, runner
):
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Seller)) == 0
    made = runner.invoke(
        args=["create-admin", "--email", EMAIL, "--name", "Ops"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert made.exit_code == 0, made.output
    db.session.remove()  # the live server reads what the command committed

    _sign_in(page)
    expect(page).to_have_url(re.compile(r"/admin/"))
    shot(page, "01-companies-empty")

    # The seller.
    page.get_by_role("link", name="Sellers").click()
    page.get_by_role("link", name="New seller").click()
    page.get_by_label("Legal name").fill("Operator Cloud GmbH")
    page.get_by_label("VAT ID").fill("DE811907980")
    page.get_by_label("Street and number").fill("Torstraße 1")
    page.get_by_label("Postal code").fill("10119")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("E-mail printed on invoices").fill("billing@operator.example")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_label("BIC").fill("COBADEFFXXX")
    shot(page, "02-seller-form")
    page.get_by_role("button", name="Create seller").click()
    expect(page.get_by_text("Seller Operator Cloud GmbH created.")).to_be_visible()
    shot(page, "03-seller")

    # The product and its two prices.
    page.get_by_role("link", name="Catalog").click()
    page.get_by_role("link", name="New product").click()
    page.get_by_label("Seller", exact=True).select_option(label="Operator Cloud GmbH")
    page.get_by_label("Code (unique per seller)").fill("cloud")
    page.get_by_label("Name", exact=True).fill("Cloud workspace")
    page.get_by_role("button", name="Save product").click()
    expect(page.get_by_text("Product Cloud workspace created.")).to_be_visible()

    page.get_by_role("link", name="New price").click()
    page.get_by_label("Code (unique per product)").fill("seat")
    page.get_by_label("Line description").fill("Seats")
    page.get_by_label("Pricing model").select_option("per_unit")
    expect(page.get_by_label("Amount per unit")).to_be_visible()  # htmx swapped the fields in
    page.get_by_label("Amount per unit").fill("12.00")
    page.get_by_role("button", name="Save price").click()
    expect(page.get_by_text("Price seat created.")).to_be_visible()

    page.get_by_role("link", name="New price").click()
    page.get_by_label("Code (unique per product)").fill("api-calls")
    page.get_by_label("Line description").fill("API calls")
    page.get_by_label("Pricing model").select_option("graduated")
    expect(page.locator("#tier-1-up_to")).to_be_visible()
    page.get_by_label("Charged on").select_option("metered")
    expect(page.get_by_label("Usage metric")).to_be_visible()
    page.get_by_role("button", name="Add a tier").click()
    expect(page.locator("#tier-2-up_to")).to_be_visible()
    page.get_by_label("Usage metric").fill("api_calls")
    for row, (up_to, unit) in enumerate([("1000", "0"), ("10000", "0.002"), ("", "0.001")]):
        page.get_by_label(f"Tier {row + 1}: Up to (units)").fill(up_to)
        page.get_by_label(f"Tier {row + 1}: Per unit").fill(unit)
    shot(page, "04-graduated-price-form")
    page.get_by_role("button", name="Save price").click()
    expect(page.get_by_text("Price api-calls created.")).to_be_visible()
    prices = page.locator("section[aria-labelledby=prices-title] tbody tr")
    expect(prices).to_have_count(2)
    expect(page.get_by_text("Metered: api_calls")).to_be_visible()
    shot(page, "05-product")

    # The company with its billing profile: a German business, so 19 % VAT.
    page.get_by_role("link", name="Companies").click()
    page.locator("#new-company summary").click()
    page.locator("#company-name").fill("Nordlicht Software")
    page.locator("#company-seller").select_option(label="Operator Cloud GmbH")
    page.locator("#company-language").select_option("de")
    page.get_by_label("Invoice addressee").fill("Nordlicht Software GmbH")
    page.locator("#company-billing_profile-address_line1").fill("Hafenstraße 3")
    page.locator("#company-billing_profile-postal_code").fill("20457")
    page.locator("#company-billing_profile-city").fill("Hamburg")
    page.locator("#company-billing_profile-country").select_option("DE")
    page.get_by_label("Invoices are e-mailed to").fill("ap@nordlicht.example")
    shot(page, "06-company-form")
    page.get_by_role("button", name="Create company").click()
    expect(page.get_by_text("Company Nordlicht Software created.")).to_be_visible()
    company_url = page.url

    # The subscription: 4 seats and the metered calls, from the first of the month.
    page.locator("#manage-subscriptions").click()
    page.locator("#new-subscription").click()
    page.locator("#items-0-price").select_option(label="Cloud workspace · Seats (licensed)")
    page.locator("#items-0-quantity").fill("4")
    page.locator("#items-1-price").select_option(label="Cloud workspace · API calls (metered)")
    page.locator("#start").fill(MONTH.isoformat())
    shot(page, "07-subscription-form")
    page.get_by_role("button", name="Create subscription").click()
    expect(page.get_by_text("The subscription of Nordlicht Software is created.")).to_be_visible()
    shot(page, "08-subscriptions")

    # The month's usage, 12,000 calls in three records; a typo first, shown at its field.
    page.goto(company_url)
    page.locator("#record-usage-link").click()
    expect(page.get_by_label("Usage metric")).to_have_value("api_calls")  # the only metric
    page.get_by_label("Quantity").fill("5k")
    page.get_by_role("button", name="Record usage").click()
    expect(page.locator("#quantity-error")).to_have_text("Enter a number such as 1,500.5.")
    shot(page, "09-usage-error")
    for hour, quantity in ((1, "5,000"), (2, "4000"), (3, "3000")):
        page.get_by_label("Quantity").fill(quantity)
        page.get_by_label("Time of use (UTC)").fill(f"{MONTH.isoformat()}T0{hour}:00")
        page.get_by_role("button", name="Record usage").click()
        expect(page.get_by_text(f"{quantity} api_calls recorded for Nordlicht")).to_be_visible()
    expect(page.locator("section[aria-labelledby=records-title] tbody tr")).to_have_count(3)
    shot(page, "10-usage")

    # The invoice, from the company page.
    page.goto(company_url)
    expect(page.get_by_text("12,000 · no quota")).to_be_visible()
    subscribed = page.locator("section[aria-labelledby=subs-title] li li")
    expect(subscribed).to_have_text(["Seats × 4", "API calls (metered)"])
    expect(page.locator("section[aria-labelledby=subs-title]")).to_contain_text("Active ·")
    shot(page, "11-company")
    page.get_by_role("link", name="Generate invoice now").click()
    expect(page.get_by_label("Month (YYYY-MM)")).to_have_value(f"{TODAY:%Y-%m}")
    page.get_by_role("button", name="Yes, generate it").click()
    expect(page.get_by_text(f"The invoice of {TODAY:%Y-%m} is ready.")).to_be_visible()
    shot(page, "12-invoice")

    # By hand: 4 seats × 12.00 = 48.00; 12,000 calls graduated: the first 1,000 free (0.00),
    # 9,000 × 0.002 = 18.00, 2,000 × 0.001 = 2.00; net 48.00 + 0 + 18.00 + 2.00 = 68.00;
    # 19 % VAT of 68.00 = 12.92; total 68.00 + 12.92 = 80.92 EUR.
    lines = page.locator("section[aria-labelledby=lines-title] tbody tr")
    expect(lines).to_have_count(4)
    cells = [
        [" ".join(cell.split()) for cell in row.locator("th, td").all_inner_texts()[1:]]
        for row in lines.all()
    ]
    assert cells == [
        ["Seats", "4", "€48.00"],
        ["API calls (1–1,000)", "1,000", "€0.00"],
        ["API calls (1,001–10,000)", "9,000", "€18.00"],
        ["API calls (10,001 and above)", "2,000", "€2.00"],
    ]
    facts = page.locator("dl.facts")
    expect(facts.locator("dt:text-is('Total') + dd")).to_have_text("€80.92")
    expect(facts.locator("dt:text-is('Open') + dd")).to_have_text("€80.92")
    assert not page.console_errors

    # The same forms in German: whatever still reads as in English is reported.
    english = {}
    forms = {
        "seller-new": "/admin/sellers/new",
        "product-new": "/admin/catalog/new",
        "company-new": "/admin/",
        "subscription-new": company_url.replace(live_server.url(), "") + "/subscriptions/new",
        "usage": company_url.replace(live_server.url(), "") + "/usage",
        "generate": company_url.replace(live_server.url(), "") + f"/generate?month={TODAY:%Y-%m}",
    }
    page.goto("/admin/catalog")
    page.get_by_role("link", name="Cloud workspace").click()
    page.wait_for_url(re.compile(r"/admin/catalog/[0-9a-f-]{36}$"))
    product_path = page.url.replace(live_server.url(), "")
    forms["price-new"] = f"{product_path}/prices/new?model=graduated&usage_kind=metered"
    for name, path in forms.items():
        assert page.goto(path).ok, path
        if name == "company-new":
            page.locator("#new-company summary").click()
        english[name] = set(_texts(page))
    page.get_by_label("Language", exact=True).select_option("de")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    report = []
    for name, path in forms.items():
        assert page.goto(path).ok, path
        if name == "company-new":
            page.locator("#new-company summary").click()
        shot(page, f"de-{name}")
        same = sorted(
            text
            for text in set(_texts(page)) & english[name]
            if re.search(r"[a-z]{3}", text) and not _is_data(text)
        )
        report += [f"{name}: {text}" for text in same]
    (SHOTS / "untranslated-de.txt").write_text("\n".join(report) + "\n", encoding="utf-8")
    # The usage page is new with this test: it, at least, is German throughout.
    assert not [line for line in report if line.startswith("usage:")], report


#: Texts that are data or names, the same in every language.
_DATA = ("Operator Cloud GmbH", "Nordlicht", "Cloud workspace", "api_calls", "IBAN", "BIC")


def _is_data(text: str) -> bool:
    return any(word in text for word in _DATA)
