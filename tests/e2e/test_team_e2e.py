"""Team and invitations in real Chromium: from the admin console's invitation to a viewer
invited from the Team page, with the link read from the e-mail the SMTP server received."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, run_axe, screenshot_both

pytestmark = pytest.mark.e2e

LINK = re.compile(r"http://localhost/invitations/[\w.\-]+")


def _link(mailbox, count: int) -> str:
    message = mailbox.wait_for(count, timeout=15)[count - 1]
    [url] = set(LINK.findall(message.get_body(preferencelist=("plain",)).get_content()))
    return urlsplit(url).path


def _language(page, code: str) -> None:
    page.locator("#language").select_option(code)
    page.locator(".langform button").click()
    expect(page.locator("html")).to_have_attribute("lang", code)


def test_admin_invites_the_billing_contact_who_joins_and_invites_a_viewer(
    page, browser, live_server, world, mailbox
):
    contact = world.a.tenant.billing_profile.billing_email
    login(page, world.admin.email)
    page.goto(f"/admin/companies/{world.a.tenant.public_id}")
    expect(page.get_by_label("E-mail", exact=True)).to_have_value(contact)  # suggested
    page.locator("#invite-role").select_option("owner")
    page.locator("#invite-button").click()
    expect(page.get_by_text(f"Invitation sent to {contact}.")).to_be_visible()
    expect(page.locator(".team-list").get_by_text(contact)).to_be_visible()
    path = _link(mailbox, 1)

    # The contact opens the e-mailed link in a browser of their own.
    context = browser.new_context(
        base_url=live_server.url(), viewport={"width": 1280, "height": 900}
    )
    invitee = context.new_page()
    invitee.console_errors = []
    invitee.on("console", lambda m: m.type == "error" and invitee.console_errors.append(m.text))
    invitee.goto(path)
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Join Alpha Industries")
    screenshot_both(invitee, "team-accept-en")
    _language(invitee, "de")
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Alpha Industries beitreten")
    screenshot_both(invitee, "team-accept-de")
    invitee.get_by_label("Ihr Name").fill("Bea Billing")
    invitee.get_by_label("Passwort", exact=True).fill("short")
    invitee.get_by_label("Passwort wiederholen").fill("short")
    invitee.get_by_role("button", name="Konto anlegen und beitreten").click()
    expect(invitee.locator(".field__error").first).to_be_visible()
    invitee.get_by_label("Passwort", exact=True).fill("bea's long password")
    invitee.get_by_label("Passwort wiederholen").fill("bea's long password")
    invitee.get_by_role("button", name="Konto anlegen und beitreten").click()
    invitee.wait_for_url(lambda url: "/invitations/" not in url)
    expect(invitee.get_by_text("Willkommen bei Alpha Industries.")).to_be_visible()

    # In the portal, as an owner: the Team page, then a viewer invited from it.
    invitee.get_by_role("link", name="Team", exact=True).click()
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Team")
    expect(invitee.locator(".team-list").get_by_text("Bea Billing", exact=True)).to_be_visible()
    screenshot_both(invitee, "team-page-de")
    _language(invitee, "en")
    invitee.get_by_label("E-mail").fill("victor.viewer@example.com")
    invitee.get_by_label("Role", exact=True).select_option("viewer")
    invitee.get_by_role("button", name="Send invitation").click()
    expect(invitee.get_by_text("Invitation sent to victor.viewer@example.com.")).to_be_visible()
    expect(invitee.locator("#team").get_by_text("victor.viewer@example.com")).to_be_visible()
    screenshot_both(invitee, "team-page-en")
    viewer_path = _link(mailbox, 2)
    assert viewer_path != path

    # The used link now explains itself and opens nothing.
    response = invitee.goto(path)
    assert response.status == 410
    expect(invitee.get_by_role("heading", level=1)).to_have_text("This invitation has been used")
    screenshot_both(invitee, "team-accept-used")
    state = context.storage_state()
    assert invitee.console_errors == [] or all("status of 410" in e for e in invitee.console_errors)
    context.close()
    for url in ("/team", viewer_path):
        assert run_axe(browser, live_server.url(url), state) == [], url
    assert page.console_errors == []
