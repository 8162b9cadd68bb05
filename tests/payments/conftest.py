"""Payment fixtures: localstripe and the Mollie stand-in on loopback, signed-event helpers."""

from __future__ import annotations

import json
import time

import pytest
import requests
import stripe

from tests.fakes.localstripe_server import LocalStripe
from tests.fakes.mollie import FakeMollieServer

STRIPE_SECRET = "sk_test_portal"
STRIPE_PUBLISHABLE = "pk_test_portal"
WEBHOOK_SECRET = "whsec_test_portal"
MOLLIE_KEY = "test_portalkey000000000000000000"


@pytest.fixture(scope="session")
def localstripe_server():
    server = LocalStripe().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mollie_server():
    server = FakeMollieServer().start()
    yield server
    server.stop()


@pytest.fixture
def localstripe(localstripe_server) -> LocalStripe:
    localstripe_server.reset()
    return localstripe_server


@pytest.fixture
def mollie(mollie_server) -> FakeMollieServer:
    mollie_server.state.reset()
    return mollie_server


def payment_settings(localstripe: LocalStripe, mollie: FakeMollieServer) -> dict:
    return {
        "STRIPE_SECRET_KEY": STRIPE_SECRET,
        "STRIPE_PUBLISHABLE_KEY": STRIPE_PUBLISHABLE,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": localstripe.url,
        "STRIPE_JS_URL": localstripe.js_url,
        "MOLLIE_API_KEY": MOLLIE_KEY,
        "MOLLIE_API_ENDPOINT": mollie.url,
    }


@pytest.fixture
def app_config(app_config, localstripe, mollie) -> dict:
    """The test app with Stripe (localstripe) and Mollie (the stand-in) configured."""
    app_config.update(payment_settings(localstripe, mollie))
    return app_config


# -- Stripe helpers -----------------------------------------------------------------------


def confirm_setup_intent(localstripe: LocalStripe, client_secret: str, **pm) -> dict:
    """Do what Stripe.js does in the browser: confirm a SetupIntent with a card or IBAN."""
    seti = client_secret.split("_secret_")[0]
    response = requests.post(
        f"{localstripe.url}/v1/setup_intents/{seti}/confirm",
        json={
            "key": STRIPE_PUBLISHABLE,
            "use_stripe_sdk": True,
            "client_secret": client_secret,
            "payment_method_data": pm,
        },
        timeout=10,
    )
    body = response.json()
    if body.get("status") == "requires_action":  # 3-D Secure: "Complete authentication"
        body = requests.post(
            f"{localstripe.url}/v1/setup_intents/{seti}/confirm",
            json={
                "key": STRIPE_PUBLISHABLE,
                "use_stripe_sdk": True,
                "client_secret": client_secret,
            },
            timeout=10,
        ).json()
    return body


def card(number: str = "4242424242424242") -> dict:
    return {
        "type": "card",
        "card": {"number": number, "exp_month": "12", "exp_year": "2030", "cvc": "123"},
        "billing_details": {"name": "Alpha Owner"},
    }


def sepa(iban: str = "DE89370400440532013000") -> dict:
    return {
        "type": "sepa_debit",
        "sepa_debit": {"iban": iban},
        "billing_details": {"name": "Alpha Owner", "email": "owner@alpha.example"},
    }


def signed_event(
    event_type: str,
    obj: dict,
    *,
    event_id: str = "evt_test_1",
    timestamp: int | None = None,
    secret: str = WEBHOOK_SECRET,
) -> tuple[bytes, dict]:
    """A Stripe event body and its ``Stripe-Signature`` header."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": timestamp,
            "data": {"object": obj},
        }
    )
    header = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
    return payload.encode(), {"Stripe-Signature": f"t={timestamp},v1={header}"}


def post_stripe_event(client, event_type: str, obj: dict, **kwargs):
    body, headers = signed_event(event_type, obj, **kwargs)
    return client.post(
        "/webhooks/stripe", data=body, headers=headers, content_type="application/json"
    )
