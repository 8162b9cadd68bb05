"""Overview, upcoming estimate and payment-method pages: full pages, fragments, roles."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from portal.db import utcnow
from portal.payments.methods import card_expiry, method_warning
from portal.payments.models import PaymentMethod, PaymentMethodStatus
from portal.tenancy.roles import Role
from tests.factories.catalog import subscribe_this_month
from tests.factories.payments import PaymentMethodFactory


def _subscribe(session, tenant):
    subscribe_this_month(session, tenant)


def test_overview_shows_estimate_chart_and_default_method(client, auth, world, session):
    _subscribe(session, world.a.tenant)
    auth.login(world.a.owner.email)
    html = client.get("/").get_data(as_text=True)
    assert "Next invoice" in html and "See the estimate" in html
    assert "Visa •••• 4242" in html
    # The chart: an accessible SVG with every month's value as text, and a table.
    assert 'role="img"' in html and '<title id="spend-svg-title">' in html
    assert html.count('class="spend__bar"') == 12
    issued = world.a.invoice.issue_date
    assert f"{issued:%B %Y}: €102.94" in html


@pytest.mark.parametrize(
    ("exp", "status", "code"),
    [
        ((2026, 11), PaymentMethodStatus.ACTIVE, "expires_soon"),
        ((2026, 9), PaymentMethodStatus.ACTIVE, "expired"),
        ((2030, 1), PaymentMethodStatus.ACTIVE, None),
        ((2030, 1), PaymentMethodStatus.INACTIVE, "revoked"),
    ],
)
def test_method_warnings(app, exp, status, code):
    method = PaymentMethod(exp_year=exp[0], exp_month=exp[1], status=status)
    warning = method_warning(method, dt.date(2026, 11, 10))
    assert (warning.code if warning else None) == code


def test_card_expiry_is_the_last_day_of_the_month(app):
    assert card_expiry(PaymentMethod(exp_month=12, exp_year=2026)) == dt.date(2026, 12, 31)
    assert card_expiry(PaymentMethod(exp_month=2, exp_year=2028)) == dt.date(2028, 2, 29)
    assert card_expiry(PaymentMethod(method_type="sepa_debit")) is None


def test_overview_warns_about_a_card_that_expires_soon(client, auth, world, session):
    today = utcnow().date()
    method = session.get(PaymentMethod, world.a.payment_method.id)
    method.exp_month, method.exp_year = today.month, today.year
    session.commit()
    auth.login(world.a.owner.email)
    assert "This card expires on" in client.get("/").get_data(as_text=True)


def test_upcoming_page_and_fragment(client, auth, world, session):
    _subscribe(session, world.a.tenant)
    auth.login(world.a.viewer.email)
    page = client.get("/upcoming")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert "Projected total" in html and "Cloud Platform" in html
    assert re.search(r'<meter min="0" max="1000\.000000" value="1000\.000000"', html)
    assert "over the quota" in html
    assert 'hx-trigger="every 60s"' in html
    fragment = client.get("/upcoming", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert 'id="estimate"' in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]


def test_upcoming_without_subscription(client, auth, world):
    auth.login(world.a.owner.email)
    assert "no active subscription" in client.get("/upcoming").get_data(as_text=True)


def test_payment_methods_page_and_fragment(client, auth, world):
    auth.login(world.a.viewer.email)
    html = client.get("/payment-methods").get_data(as_text=True)
    assert "Visa •••• 4242" in html and "Default" in html
    assert "Make default" not in html and "Remove" not in html  # viewers change nothing
    assert "DE89370400440532013000" in html  # bank transfer details of the seller
    fragment = client.get("/payment-methods", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.OWNER, Role.BILLING_ADMIN])
def test_set_default_and_remove(client, auth, world, session, role):
    second = PaymentMethodFactory(tenant=world.a.tenant, last4="1111")
    session.commit()
    auth.login(world.a.user(role).email)
    response = client.post(f"/payment-methods/{second.public_id}/default")
    assert response.status_code == 303
    session.expire_all()
    assert session.get(PaymentMethod, second.id).is_default
    assert not session.get(PaymentMethod, world.a.payment_method.id).is_default
    removed = client.post(f"/payment-methods/{second.public_id}/remove")
    assert removed.status_code == 303
    session.expire_all()
    gone = session.get(PaymentMethod, second.id)
    assert gone.status == PaymentMethodStatus.INACTIVE and not gone.is_default
    html = client.get("/payment-methods").get_data(as_text=True)
    assert "•••• 1111" not in html and "Payment method removed." in html


def test_refusals_are_messages_not_errors(client, auth, world, session):
    pending = PaymentMethodFactory(
        tenant=world.a.tenant, status=PaymentMethodStatus.PENDING, provider_ref=None
    )
    session.commit()
    auth.login(world.a.owner.email)
    response = client.post(f"/payment-methods/{pending.public_id}/default", follow_redirects=True)
    assert "only an active method can be the default" in response.get_data(as_text=True)
    client.post(f"/payment-methods/{world.a.payment_method.public_id}/remove")
    again = client.post(
        f"/payment-methods/{world.a.payment_method.public_id}/remove", follow_redirects=True
    )
    assert again.status_code == 200
    assert "this payment method is already removed" in again.get_data(as_text=True)


def test_role_refusal_is_a_403_page_in_the_portal_look(client, auth, world):
    auth.login(world.a.viewer.email)
    response = client.post(f"/payment-methods/{world.a.payment_method.public_id}/default")
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "Not allowed" in html and 'class="topbar"' in html
