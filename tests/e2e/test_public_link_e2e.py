"""A billing contact opens the invoice link from a received e-mail in real Chromium.

The link is taken from the e-mail the SMTP server received; the page needs no login,
shows the invoice and nothing of the portal, and downloads the same PDF the e-mail
carried. Expired, tampered and revoked links show nothing of the invoice.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from portal.db import utcnow
from portal.extensions import db
from portal.notifications.delivery import send_invoice
from portal.notifications.links import issue_link, rotate_links, token_for
from tests.e2e.conftest import AXE, run_axe, screenshot_both

pytestmark = pytest.mark.e2e

HREF = re.compile(r'href="(http://localhost/i/[^"]+)"')


def _emailed_link(world, mailbox) -> tuple[str, bytes]:
    """Send tenant A's invoice; the link path in the received HTML part, and its PDF."""
    send_invoice(db.session, world.a.invoice)
    db.session.commit()
    [message] = mailbox.wait_for(1)
    html = message.get_body(preferencelist=("html",)).get_content()
    [url] = set(HREF.findall(html))
    [pdf] = [
        a.get_content() for a in message.iter_attachments() if a.get_filename().endswith(".pdf")
    ]
    return urlsplit(url).path, pdf


def test_billing_contact_opens_the_emailed_link_and_downloads_the_pdf(
    page, world, mailbox, tmp_path
):
    path, emailed_pdf = _emailed_link(world, mailbox)
    invoice = world.a.invoice
    response = page.goto(path)
    assert response.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Invoice {invoice.number}")
    expect(page.locator(".invoicehead__badges")).to_contain_text("Sent")
    expect(page.get_by_role("heading", name="Lines")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Platform"))).to_be_visible()
    # No login, no portal: no navigation, no sign-in, nothing of tenant B.
    assert page.locator("nav").count() == 0
    content = page.content()
    assert world.b.tenant.name not in content and world.b.invoice.number not in content
    assert "/login" not in content and "/payment-methods" not in content
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"{invoice.number}.pdf"
    saved = tmp_path / "invoice.pdf"
    download.save_as(saved)
    assert saved.read_bytes() == emailed_pdf  # the stored document, byte for byte
    screenshot_both(page, "public-invoice-link")
    assert page.console_errors == []


def _shows_nothing(page, world, path: str, status: int, heading: str) -> None:
    response = page.goto(path)
    assert response.status == status
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    content = page.content()
    for secret in (world.a.invoice.number, world.a.tenant.name, "Platform", "Download PDF"):
        assert secret not in content


def test_expired_tampered_and_revoked_links_show_nothing(page, world, mailbox):
    path, _ = _emailed_link(world, mailbox)
    token = path.rsplit("/", 1)[1]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    _shows_nothing(page, world, f"/i/{tampered}", 404, "This link does not work")
    expired = issue_link(db.session, world.a.invoice, now=utcnow() - dt.timedelta(days=90))
    db.session.commit()
    _shows_nothing(page, world, f"/i/{token_for(expired)}", 410, "This link has expired")
    screenshot_both(page, "public-invoice-link-expired")
    rotate_links(db.session, world.a.invoice)
    db.session.commit()
    _shows_nothing(page, world, path, 410, "This link was revoked")
    # The only console errors are the documents' own 404/410 statuses.
    assert all("the server responded with a status of 4" in e for e in page.console_errors)


@pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (npm ci)")
def test_public_pages_have_no_serious_accessibility_violations(browser, live_server, world):
    link = issue_link(db.session, world.a.invoice)
    db.session.commit()
    for path in (f"/i/{token_for(link)}", "/i/not-a-token"):
        violations = run_axe(browser, live_server.url(path), None)
        assert violations == [], (path, [(v["id"], v["help"]) for v in violations])
