"""Issue 17's whole flow in real Chromium, from an empty database.

The operator (``create-admin``, then the admin API for the seller, a seat price, the company
and its subscription: their pages have e2e tests of their own) invites the company's
billing contact from the admin console. The contact opens the e-mailed link, sets a
password, adds a card (Stripe.js against localstripe), invites a viewer from the Team page
and raises the seats on the Subscription page after its preview; the invoice the run then
issues for the period is the previewed one. axe finds no serious violation on the new pages.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from portal.extensions import db
from portal.tenancy.models import User
from tests.e2e.conftest import run_axe, screenshot_both
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    localstripe,
    localstripe_server,
    mollie,
    mollie_server,
    payment_settings,
)

pytestmark = pytest.mark.e2e

MONTH = dt.date.today().replace(day=1)
ORGS = "/api/v1/organizations"
ADMIN, ADMIN_PASSWORD = "ops@operator.example", "Correct-horse-battery-9"
CONTACT, CONTACT_PASSWORD = "ap@nordlicht.example", "a long billing password"
LINK = re.compile(r"https?://[^/\s]+/invitations/[\w.\-]+")


@pytest.fixture
def live_server_port():
    from tests.fakes.localstripe_server import free_port

    return free_port()


@pytest.fixture
def app_config(app_config, localstripe, mollie, live_server_port):  # noqa: F811
    app_config.update(payment_settings(localstripe, mollie))
    app_config["LIVESERVER_PORT"] = live_server_port
    app_config["PUBLIC_BASE_URL"] = f"http://localhost:{live_server_port}"
    return app_config


def _link(mailbox, count: int) -> str:
    message = mailbox.wait_for(count, timeout=15)[count - 1]
    [url] = set(LINK.findall(message.get_body(preferencelist=("plain",)).get_content()))
    return urlsplit(url).path


def _cents(text: str) -> int:
    return int(re.sub(r"[^0-9]", "", text))


def _set_up_by_the_operator(client, runner) -> tuple[str, str]:
    """The operator's admin and a company subscribed to 3 seats; (company uid, admin token)."""
    made = runner.invoke(
        args=["create-admin", "--email", ADMIN, "--name", "Ops"],
        input=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n",
    )
    assert made.exit_code == 0, made.output
    token = runner.invoke(args=["create-token", "--admin", "--name", "setup"])
    assert token.exit_code == 0, token.output
    headers = {"Authorization": f"Bearer {token.output.splitlines()[1].strip()}"}

    def created(path: str, body: dict) -> dict:
        answer = client.post(ORGS + path, json=body, headers=headers)
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()["data"]

    seller = created(
        "/sellers",
        {"legalName": "Operator Cloud GmbH", "addressLine1": "Torstraße 1",
         "postalCode": "10119", "city": "Berlin", "country": "DE", "vatId": "DE811907980",
         "email": "billing@operator.example"},
    )  # fmt: skip
    product = created(
        "/billing/products",
        {"sellerUid": seller["sellerUid"], "code": "cloud", "name": "Cloud workspace"},
    )
    seats = created(
        "/billing/prices",
        {"productUid": product["productUid"], "code": "seat", "nickname": "Seats",
         "currency": "EUR", "model": "per_unit", "unitAmount": "10.00"},
    )  # fmt: skip
    company = created(
        "/companies",
        {"name": "Nordlicht Software", "sellerUid": seller["sellerUid"], "language": "en",
         "billingProfile": {"companyName": "Nordlicht Software GmbH",
                            "addressLine1": "Hafenstraße 3", "postalCode": "20457",
                            "city": "Hamburg", "country": "DE", "billingEmail": CONTACT}},
    )  # fmt: skip
    created(
        f"/companies/{company['companyUid']}/billing/subscriptions",
        {"items": [{"priceUid": seats["priceUid"], "quantity": "3"}],
         "startDate": MONTH.isoformat()},
    )  # fmt: skip
    db.session.remove()  # the live server reads what the requests committed
    return company["companyUid"], headers["Authorization"]


def test_billing_contact_joins_pays_by_card_invites_a_viewer_and_raises_seats(
    page, browser, live_server, client, runner, mailbox
):
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    company_uid, bearer = _set_up_by_the_operator(client, runner)

    # The operator invites the billing contact from the company page.
    page.goto("/login")
    page.get_by_label("E-mail").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"/admin/companies/{company_uid}")
    expect(page.get_by_label("E-mail", exact=True)).to_have_value(CONTACT)
    page.locator("#invite-role").select_option("owner")
    page.locator("#invite-button").click()
    expect(page.get_by_text(f"Invitation sent to {CONTACT}.")).to_be_visible()

    # The contact, in a browser of their own: the link, a password, the portal.
    context = browser.new_context(
        base_url=live_server.url(), viewport={"width": 1280, "height": 900}
    )
    contact = context.new_page()
    contact.console_errors = []
    contact.goto(_link(mailbox, 1))
    contact.get_by_label("Your name").fill("Bea Billing")
    contact.get_by_label("Password", exact=True).fill(CONTACT_PASSWORD)
    contact.get_by_label("Repeat password").fill(CONTACT_PASSWORD)
    contact.get_by_role("button", name="Create account and join").click()
    contact.wait_for_url(lambda url: "/invitations/" not in url)

    # A card through Stripe.js (localstripe).
    contact.goto("/payment-methods")
    contact.get_by_role("button", name="Add card", exact=True).click()
    contact.wait_for_url("**/setup")
    contact.get_by_placeholder("number").fill("4242424242424242")
    contact.get_by_placeholder("exp_month").fill("12")
    contact.get_by_placeholder("exp_year").fill("30")
    contact.get_by_placeholder("cvc").fill("123")
    contact.get_by_placeholder("postal_code").fill("20457")
    contact.get_by_role("button", name="Save payment method").click()
    contact.wait_for_url("**/payment-methods")
    expect(contact.locator(".methods__item").filter(has_text="4242")).to_contain_text("Default")

    # A viewer invited from the Team page.
    contact.get_by_role("link", name="Team", exact=True).click()
    contact.get_by_label("E-mail").fill("victor.viewer@example.com")
    contact.get_by_label("Role", exact=True).select_option("viewer")
    contact.get_by_role("button", name="Send invitation").click()
    expect(contact.get_by_text("Invitation sent to victor.viewer@example.com.")).to_be_visible()
    assert _link(mailbox, 2)

    # Seats 3 → 5 on the Subscription page, after the preview.
    contact.get_by_role("link", name="Subscription", exact=True).click()
    contact.get_by_role("link", name="Change Seats").click()
    contact.get_by_label("New quantity").fill("5")
    contact.get_by_role("button", name="Preview the invoice").click()
    expect(contact.locator("#preview-total")).to_be_visible()
    previewed = _cents(contact.locator("#preview-total").inner_text())
    screenshot_both(contact, "people-preview")
    contact.get_by_role("button", name="Confirm the change").click()
    expect(contact.locator(".flash--success")).to_contain_text("Your subscription is changed")
    state = context.storage_state()
    assert contact.console_errors == []
    context.close()

    # The period's invoice, issued by the run, is the one previewed.
    run = client.post(
        f"{ORGS}/companies/{company_uid}/billing/generateInvoices?period={MONTH:%Y-%m}",
        headers={"Authorization": bearer},
    )
    assert run.status_code in (200, 202), run.get_json()
    window = {"fromDate": MONTH.isoformat(), "toDate": (MONTH + dt.timedelta(days=62)).isoformat()}
    listed = client.get(
        f"{ORGS}/companies/{company_uid}/billing/invoices",
        query_string=window,
        headers={"Authorization": bearer},
    )
    [invoice] = listed.get_json()["data"]
    assert invoice["totals"]["amountDueMinor"] == previewed
    # At least the 3 seats of the whole month, 3 × 10.00 + 19 % VAT = 35.70, and at most 5.
    assert 3570 <= previewed <= 5950

    for url in ("/team", "/subscription", "/account"):
        assert run_axe(browser, live_server.url(url), state) == [], url
