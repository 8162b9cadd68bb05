"""A tenant adds payment methods in real Chromium: Stripe.js (localstripe) and Mollie redirect."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, screenshot_both
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    localstripe,
    localstripe_server,
    mollie,
    mollie_server,
    payment_settings,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def app_config(app_config, localstripe, mollie, live_server_port):  # noqa: F811
    app_config.update(payment_settings(localstripe, mollie))
    app_config["LIVESERVER_PORT"] = live_server_port
    app_config["PUBLIC_BASE_URL"] = f"http://localhost:{live_server_port}"
    return app_config


@pytest.fixture
def live_server_port():
    from tests.fakes.localstripe_server import free_port

    return free_port()


def _fresh_tenant_login(page, world):
    """Tenant A without its factory card, so the first added method becomes the default."""
    from portal.extensions import db
    from portal.payments.models import PaymentMethodStatus

    method = world.a.payment_method
    method.is_default = False
    method.status = PaymentMethodStatus.INACTIVE
    db.session.commit()
    login(page, world.a.owner.email)


def _add_card(page, number: str):
    page.goto("/payment-methods")
    page.get_by_role("button", name="Add card", exact=True).click()
    page.wait_for_url("**/setup")
    page.get_by_placeholder("number").fill(number)
    page.get_by_placeholder("exp_month").fill("12")
    page.get_by_placeholder("exp_year").fill("30")
    page.get_by_placeholder("cvc").fill("123")
    page.get_by_placeholder("postal_code").fill("10115")
    page.get_by_role("button", name="Save payment method").click()


def test_add_card_success_is_default(page, world, live_server):
    _fresh_tenant_login(page, world)
    _add_card(page, "4242424242424242")
    page.wait_for_url("**/payment-methods")
    expect(page.get_by_text("Payment method added.")).to_be_visible()
    item = page.locator(".methods__item").filter(has_text="4242")
    expect(item).to_contain_text("Default")
    screenshot_both(page, "payments-card-added")
    assert page.console_errors == []


def test_add_card_declined_shows_error(page, world, live_server):
    _fresh_tenant_login(page, world)
    _add_card(page, "4000000000000002")
    expect(page.locator("#setup-error")).to_be_visible()
    screenshot_both(page, "payments-card-declined")


def test_add_card_with_3d_secure(page, world, live_server):
    _fresh_tenant_login(page, world)
    _add_card(page, "4000002500003155")
    page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_url("**/payment-methods")
    expect(page.locator(".methods__item").filter(has_text="3155")).to_contain_text("Default")


def test_mollie_redirect_then_default(page, world, live_server):
    _fresh_tenant_login(page, world)
    page.goto("/payment-methods")
    page.get_by_role("button", name="Add SEPA Direct Debit via Mollie").click()
    expect(page.get_by_role("heading", name="Mollie test checkout")).to_be_visible()
    page.get_by_role("button", name="Paid").click()
    page.wait_for_url("**/payment-methods")
    item = page.locator(".methods__item").filter(has_text="SEPA Direct Debit")
    expect(item).to_contain_text("Default")
    expect(item).to_contain_text("0000")
    screenshot_both(page, "payments-mollie-added")


def test_viewer_sees_no_add_controls(page, world, live_server):
    login(page, world.a.viewer.email)
    page.goto("/payment-methods")
    expect(page.get_by_role("button", name="Add card", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
