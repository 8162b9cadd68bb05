"""The invoice list and detail in real Chromium: htmx filters, history, PDF, e-mail, a11y."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.invoices.drafts import DraftLine
from portal.invoices.lifecycle import mark_paid
from portal.invoices.states import InvoiceKind, VatCategory
from tests.e2e.conftest import AXE, login, run_axe, screenshot_both
from tests.factories.invoices import make_invoice

pytestmark = pytest.mark.e2e


@pytest.fixture
def thirty(world):
    """30 more invoices for tenant A, one a month from January 2024; four of them paid."""
    invoices = []
    for n in range(30):
        year, month = 2024 + n // 12, n % 12 + 1
        start = dt.date(year, month, 1)
        end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        invoices.append(
            make_invoice(
                world.a.tenant,
                period_start=start,
                period_end=end,
                kind=InvoiceKind.USAGE,
                lines=[
                    DraftLine(
                        f"API calls {start:%B %Y}",
                        Decimal(1000 + 250 * n),
                        Decimal("0.0125"),
                        vat_category=VatCategory.STANDARD,
                        vat_rate=Decimal(19),
                    ),
                    DraftLine(
                        "Support plan",
                        Decimal(1),
                        Decimal("99.00"),
                        vat_category=VatCategory.STANDARD,
                        vat_rate=Decimal(19),
                    ),
                ],
            )
        )
    for invoice in invoices[:4]:
        mark_paid(db.session, invoice)
    db.session.commit()
    return invoices


def _rows(page):
    return page.locator("#invoice-results tbody tr")


def test_filter_paginate_history_detail_and_pdf(page, world, thirty, tmp_path):
    login(page, world.a.owner.email)
    page.goto("/invoices")
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")
    expect(page.locator("#invoice-list-count")).to_have_text("1–25 of 31")
    expect(_rows(page)).to_have_count(25)
    # A marker that survives htmx swaps but not a full page load.
    page.evaluate("() => { window.__stayed = true }")

    # Status tab, then a number search (lower case: the search ignores case).
    page.locator("#tab-open").click()
    expect(page).to_have_url(re.compile(r"/invoices\?status=open$"))
    expect(page.locator("#invoice-list-count")).to_have_text("1–25 of 27")
    expect(page.locator("#tab-open")).to_have_attribute("aria-current", "page")
    page.get_by_label("Invoice number").fill("inv-202")
    page.get_by_label("Invoice number").press("Enter")
    expect(page).to_have_url(re.compile(r"/invoices\?status=open&number=inv-202$"))
    expect(page.locator("#invoice-list-count")).to_have_text("1–25 of 27")

    # Page 2.
    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"status=open&number=inv-202&page=2$"))
    expect(_rows(page)).to_have_count(2)
    expect(page.locator("#invoice-list-count")).to_have_text("26–27 of 27")
    assert page.evaluate("() => window.__stayed") is True  # swapped, not reloaded

    # Back and forward: the URL and the table follow.
    page.go_back()
    expect(page).to_have_url(re.compile(r"/invoices\?status=open&number=inv-202$"))
    expect(_rows(page)).to_have_count(25)
    expect(page.get_by_label("Invoice number")).to_have_value("inv-202")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/invoices\?status=open$"))
    expect(page.get_by_label("Invoice number")).to_have_value("")
    expect(page.locator("#invoice-list-count")).to_have_text("1–25 of 27")
    page.go_back()
    expect(page).to_have_url(re.compile(r"/invoices$"))
    expect(page.locator("#invoice-list-count")).to_have_text("1–25 of 31")
    page.go_forward()
    page.go_forward()
    page.go_forward()
    expect(page).to_have_url(re.compile(r"page=2$"))
    expect(_rows(page)).to_have_count(2)

    # Reload keeps the state (the same URL renders the full page).
    page.reload()
    expect(page.locator("#invoice-list-count")).to_have_text("26–27 of 27")
    expect(page.get_by_label("Invoice number")).to_have_value("inv-202")
    expect(page.locator("#tab-open")).to_have_attribute("aria-current", "page")
    expect(page.locator("#page-2")).to_have_attribute("aria-current", "page")

    # Sort by total through the column header.
    page.goto("/invoices")
    page.locator("#sort-total").click()
    expect(page).to_have_url(re.compile(r"sort=total$"))
    expect(page.locator("th[aria-sort='descending']")).to_contain_text("Total")

    # A date range with the date inputs.
    page.get_by_label("Issued from").fill("2025-01-01")
    expect(page).to_have_url(re.compile(r"issued_from=2025-01-01"))
    expect(page.get_by_label("Issued from")).to_have_value("2025-01-01")
    page.get_by_label("Issued to").fill("2025-12-31")
    expect(page).to_have_url(re.compile(r"issued_from=2025-01-01.*issued_to=2025-12-31"))
    expect(page.locator("#invoice-list-count")).to_have_text("1–12 of 12")

    # Unusable input: a visible message, the list with defaults.
    page.goto("/invoices?issued_from=31.12.2025&page_size=10000&status=archived")
    expect(page.get_by_role("alert")).to_contain_text("“31.12.2025” is not a date")
    expect(page.locator("#invoice-list-count")).to_have_text("1–31 of 31")
    page.screenshot(path=str(tmp_path / "errors.png"), full_page=True, caret="initial")

    page.goto("/invoices")
    screenshot_both(page, "invoices")

    # Open the newest invoice and download its PDF.
    newest = thirty[-1]
    page.get_by_role("link", name=newest.number, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/invoices/{newest.public_id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {newest.number}")
    expect(page.get_by_role("heading", name="VAT breakdown")).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"{newest.number}.pdf"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    assert target.read_bytes().startswith(b"%PDF")
    screenshot_both(page, "invoice-detail")

    # Printed, the page is the invoice alone: no navigation, no buttons.
    page.emulate_media(media="print")
    expect(page.locator(".invoice-actions")).to_be_hidden()
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator(".invoice-backlink")).to_be_hidden()
    expect(page.get_by_role("heading", name="Lines")).to_be_visible()
    page.screenshot(path=str(tmp_path / "print.png"), full_page=True, caret="initial")
    page.emulate_media(media="screen")

    assert page.console_errors == []


def test_sending_from_the_detail_page(page, world, mailbox):
    login(page, world.a.billing_admin.email)
    page.goto(f"/invoices/{world.a.invoice.public_id}")
    page.get_by_role("button", name="Send by e-mail").click()
    expect(page.locator(".flash--success")).to_contain_text(
        f"Invoice {world.a.invoice.number} is on its way"
    )
    expect(page.locator(".invoicehead__badges")).to_contain_text("Sent")
    [message] = mailbox.wait_for(1)
    assert [a.get_filename() for a in message.iter_attachments()] == [
        f"{world.a.invoice.number}.pdf"
    ]
    assert page.console_errors == []


def test_invoice_pages_fit_a_narrow_screen(browser, live_server, world, thirty):
    context = browser.new_context(
        base_url=live_server.url(), viewport={"width": 360, "height": 740}
    )
    page = context.new_page()
    login(page, world.a.owner.email)
    for path in ("/invoices", "/invoices?page=2", f"/invoices/{world.a.invoice.public_id}"):
        page.goto(path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 360, f"{path} is {width}px wide at 360px"
    context.close()


@pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (npm ci)")
def test_invoice_pages_have_no_serious_accessibility_violations(
    browser, live_server, world, thirty
):
    context = browser.new_context(base_url=live_server.url())
    page = context.new_page()
    login(page, world.a.owner.email)
    state = context.storage_state()
    for path in (
        "/invoices",
        "/invoices?status=open&number=inv&page=2&issued_from=bad",
        f"/invoices/{world.a.invoice.public_id}",
        f"/invoices/{thirty[0].public_id}",
    ):
        violations = run_axe(browser, live_server.url(path), state)
        assert violations == [], (path, [(v["id"], v["help"]) for v in violations])
    context.close()
