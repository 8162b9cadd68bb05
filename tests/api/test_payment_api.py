"""The payment endpoints of the tenant API over HTTP against localstripe and the Mollie
stand-in: providers, config, setup, confirm and adding a method."""

from __future__ import annotations

import uuid

import pytest
import requests
import sqlalchemy as sa

from portal.payments.models import PaymentMethod, PaymentMethodStatus
from tests.api.conftest import ApiClient, write_token
from tests.payments.conftest import card, confirm_setup_intent

RETURN_URL = "http://localhost/payment-methods"


def test_providers_are_public_and_list_their_method_types(client):
    response = client.get("/api/v1/billing/payment-providers")
    assert response.status_code == 200
    assert response.get_json()["data"] == [
        {
            "slug": "stripe",
            "name": "Stripe",
            "method_types": ["card", "sepa_debit"],
            "flow": "client_secret",
        },
        {
            "slug": "mollie",
            "name": "Mollie",
            "method_types": ["directdebit", "creditcard", "paypal"],
            "flow": "redirect",
        },
    ]


def test_provider_config_is_public_and_holds_no_secret(client):
    response = client.get("/api/v1/billing/payment-providers/stripe/config")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["publishable_key"].startswith("pk_test")
    assert "sk_test" not in response.get_data(as_text=True)
    missing = client.get("/api/v1/billing/payment-providers/crypto/config")
    assert missing.status_code == 404
    assert missing.get_json()["detail"][0]["loc"] == ["path", "slug"]


def test_stripe_setup_then_confirm_activates_the_card(api: ApiClient, world, localstripe, session):
    started = api.post(
        "/payment-providers/stripe/setup", json={"method_type": "card", "return_url": RETURN_URL}
    )
    assert started.status_code == 200, started.get_json()
    setup = started.get_json()["data"]
    assert setup["client_secret"].startswith("seti_") and setup["status"] == "pending"

    # What Stripe.js does in the browser, then the page's confirmation call.
    confirmed_at_stripe = confirm_setup_intent(localstripe, setup["client_secret"], **card())
    assert confirmed_at_stripe["status"] == "succeeded"
    intent_id = setup["client_secret"].split("_secret_")[0]
    confirmed = api.post(
        "/payment-providers/stripe/confirm",
        json={"confirmation_data": {"setup_intent_id": intent_id}},
    )
    assert confirmed.status_code == 200, confirmed.get_json()
    method = confirmed.get_json()["data"]
    assert method["id"] == setup["payment_method_id"]
    assert method["status"] == "active" and method["last4"] == "4242"
    listed = {m["id"]: m for m in api.get("/payment-methods").get_json()["data"]}
    assert listed[method["id"]]["status"] == "active"

    # Confirming again changes nothing (the webhook may have come first).
    again = api.post(
        "/payment-providers/stripe/confirm",
        json={"confirmation_data": {"setup_intent_id": intent_id}},
    )
    assert again.status_code == 200 and again.get_json()["data"] == method


def test_confirming_another_tenants_setup_is_404(client, world, localstripe, session):
    api_b = ApiClient(client, write_token(world.b.tenant))
    setup = api_b.post("/payment-providers/stripe/setup", json={"method_type": "card"}).get_json()
    intent_id = setup["data"]["client_secret"].split("_secret_")[0]
    api_a = ApiClient(client, write_token(world.a.tenant))
    response = api_a.post(
        "/payment-providers/stripe/confirm",
        json={"confirmation_data": {"setup_intent_id": intent_id}},
    )
    assert response.status_code == 404
    assert (
        session.scalar(sa.select(PaymentMethod.status).where(PaymentMethod.setup_ref == intent_id))
        == PaymentMethodStatus.PENDING
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"method_type": "bitcoin"}, ["body", "method_type"]),
        ({"method_type": "card", "return_url": "javascript:alert(1)"}, ["body", "return_url"]),
        ({"method_type": "card", "return_url": "https://evil.example/x"}, ["body", "return_url"]),
        ({}, ["body", "method_type"]),
        ({"method_type": "card", "extra": 1}, ["body", "extra"]),
    ],
)
def test_bad_setup_is_422_and_creates_nothing(api, world, localstripe, session, body, loc):
    before = session.scalar(sa.select(sa.func.count()).select_from(PaymentMethod))
    response = api.post("/payment-providers/stripe/setup", json=body)
    assert response.status_code == 422, response.get_json()
    assert loc in [entry["loc"] for entry in response.get_json()["detail"]]
    assert session.scalar(sa.select(sa.func.count()).select_from(PaymentMethod)) == before


def test_unknown_provider_in_the_path_is_404(api, localstripe):
    response = api.post("/payment-providers/crypto/setup", json={"method_type": "card"})
    assert response.status_code == 404


def test_confirm_with_bad_data_is_a_clear_error(api, localstripe):
    missing = api.post("/payment-providers/stripe/confirm", json={"confirmation_data": {}})
    assert missing.status_code == 404
    wrong_shape = api.post("/payment-providers/stripe/confirm", json={"confirmation_data": "x"})
    assert wrong_shape.status_code == 422
    assert wrong_shape.get_json()["detail"][0]["loc"] == ["body", "confirmation_data"]


def test_add_payment_method_with_mollie_is_201_pending_with_a_redirect(api, world, mollie, session):
    response = api.post(
        "/payment-methods",
        json={"provider_slug": "mollie", "method_type": "directdebit", "return_url": RETURN_URL},
    )
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert data["status"] == "pending" and data["provider"] == "mollie"
    checkout = data["next_action"]["redirect_url"]
    assert checkout.startswith(mollie.url)

    # The tenant pays the first payment at the checkout; Mollie calls the webhook and
    # sends the browser back; the method is then active.
    requests.post(checkout, data={"status": "paid"}, allow_redirects=False, timeout=10)
    session.expire_all()
    method = session.scalar(
        sa.select(PaymentMethod).where(PaymentMethod.public_id == uuid.UUID(data["id"]))
    )
    if method.status == PaymentMethodStatus.PENDING:  # webhook not delivered to the test app
        payment_id = method.setup_ref
        confirmed = api.post(
            "/payment-providers/mollie/confirm",
            json={"confirmation_data": {"payment_id": payment_id}},
        )
        assert confirmed.status_code == 200, confirmed.get_json()
    listed = {m["id"]: m for m in api.get("/payment-methods").get_json()["data"]}
    assert listed[data["id"]]["status"] == "active"
    assert listed[data["id"]]["mandate_reference"]


def test_add_payment_method_with_an_unknown_provider_is_422(api, mollie):
    response = api.post("/payment-methods", json={"provider_slug": "nope", "method_type": "card"})
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"] == ["body", "provider_slug"]


def test_delete_detaches_at_the_provider_and_keeps_history(api, world, localstripe, session):
    setup = api.post("/payment-providers/stripe/setup", json={"method_type": "card"}).get_json()
    confirm_setup_intent(localstripe, setup["data"]["client_secret"], **card())
    intent_id = setup["data"]["client_secret"].split("_secret_")[0]
    method = api.post(
        "/payment-providers/stripe/confirm",
        json={"confirmation_data": {"setup_intent_id": intent_id}},
    ).get_json()["data"]
    removed = api.delete(f"/payment-methods/{method['id']}")
    assert removed.status_code == 200, removed.get_json()
    assert removed.get_json()["data"]["status"] == "inactive"
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(PaymentMethod)
            .where(PaymentMethod.public_id == uuid.UUID(method["id"]))
        )
        == 1
    )
