"""The account page in real Chromium: errors at the fields, the language switch, the
e-mail change through the link received over SMTP, the password change; screenshots at
1280 and 375 px in English and German, axe, no page-wide horizontal scroll."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, run_axe, screenshot_both
from tests.factories.tenancy import PASSWORD

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a much longer new password"


def _fits_375(page) -> None:
    page.set_viewport_size({"width": 375, "height": 900})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    page.set_viewport_size({"width": 1280, "height": 900})


def _link(message) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(r"http://localhost(/account/email/confirm/\S+)", body).group(1)


def test_account_page_end_to_end(page, world, mailbox):
    login(page, world.a.owner.email)
    page.get_by_role("link", name="Account", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    expect(page.get_by_role("link", name="Account", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    _fits_375(page)
    screenshot_both(page, "account")

    # A wrong current password: the message at the field, focus on it, nothing changed.
    page.get_by_label("Current password").nth(1).fill("not my password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_have_text(
        "This is not your current password."
    )
    expect(page.locator("#current_password")).to_be_focused()
    expect(page.locator("#current_password")).to_have_attribute("aria-invalid", "true")
    _fits_375(page)
    screenshot_both(page, "account-error")

    # German: the page reloads in the chosen language.
    page.locator("#account-language").select_option("de")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Konto")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("status")).to_have_text("Ihr Konto ist gespeichert.")
    _fits_375(page)
    screenshot_both(page, "account-de")

    # The e-mail change, with a mistake first.
    page.get_by_label("Neue E-Mail-Adresse").fill("ada@new")
    page.locator("#email-password").fill(PASSWORD)
    page.get_by_role("button", name="Bestätigungslink senden").click()
    expect(page.locator("#email-error")).to_have_text(
        "Geben Sie eine gültige E-Mail-Adresse ein, etwa name@example.com."
    )
    expect(page.locator("#email-password")).to_have_value("")  # not sent back to the page
    screenshot_both(page, "account-error-de")
    page.get_by_label("Neue E-Mail-Adresse").fill("ada@new.example")
    page.locator("#email-password").fill(PASSWORD)
    page.get_by_role("button", name="Bestätigungslink senden").click()
    expect(page.get_by_role("status")).to_contain_text("Wir haben einen Link an ada@new.example")

    [message] = mailbox.wait_for(1)
    assert message["To"] == "ada@new.example"
    link = _link(message)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Bestätigen Sie Ihre neue E-Mail-Adresse"
    )
    _fits_375(page)
    screenshot_both(page, "account-confirm-de")
    page.get_by_role("button", name="ada@new.example verwenden").click()
    expect(page.get_by_role("status")).to_have_text(
        "Ihre E-Mail-Adresse ist jetzt ada@new.example."
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihr Konto")
    assert mailbox.wait_for(2)[1]["To"] == world.a.owner.email  # the notice to the old one

    page.goto(link)  # a second time
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Dieser Bestätigungslink ist nicht mehr gültig"
    )
    _fits_375(page)
    screenshot_both(page, "account-link-used-de")

    # Back to English; the password change keeps this session signed in.
    page.goto("/account")
    page.locator("#account-language").select_option("en")
    page.get_by_role("button", name="Speichern", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    page.get_by_label("Current password").nth(1).fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed.")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    expect(page.get_by_text("Signed in as ada@new.example.")).to_be_visible()

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This confirmation link can no longer be used"
    )
    screenshot_both(page, "account-link-used")
    page.goto("/account/email/confirm/" + link.rsplit("/", 1)[1] + "x")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This confirmation link does not work"
    )
    # Chromium logs the refused links' own 410 and 404 answers; nothing else may fail.
    refused = re.compile(r"status of (404|410) ")
    assert [e for e in page.console_errors if not refused.search(e)] == []


def test_confirmation_page_in_english(page, world, mailbox):
    login(page, world.a.owner.email)
    page.goto("/account")
    page.get_by_label("New e-mail address").fill("ada@new.example")
    page.locator("#email-password").fill(PASSWORD)
    page.get_by_role("button", name="Send confirmation link").click()
    expect(page.get_by_role("status")).to_contain_text("We have sent a link to ada@new.example")
    screenshot_both(page, "account-sent")
    page.goto(_link(mailbox.wait_for(1)[0]))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your new e-mail address")
    screenshot_both(page, "account-confirm")


def test_platform_admin_has_the_page_too(page, world):
    login(page, world.admin.email)
    page.get_by_role("link", name="Account", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    screenshot_both(page, "account-admin")


def test_account_pages_pass_axe(browser, live_server, world, mailbox):
    context = browser.new_context(base_url=live_server.url())
    page = context.new_page()
    login(page, world.a.owner.email)
    page.goto("/account")
    page.locator("#email-password").fill("wrong")
    page.get_by_role("button", name="Send confirmation link").click()
    expect(page.locator("#email-error")).to_be_visible()
    state = context.storage_state()
    assert run_axe(browser, live_server.url("/account"), state) == []
    page.get_by_label("New e-mail address").fill("ada@new.example")
    page.locator("#email-password").fill(PASSWORD)
    page.get_by_role("button", name="Send confirmation link").click()
    link = _link(mailbox.wait_for(1)[0])
    assert run_axe(browser, live_server.url(link), state) == []
    assert run_axe(browser, live_server.url("/account/email/confirm/nope"), state) == []
    context.close()
