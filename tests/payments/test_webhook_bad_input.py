"""Webhook deliveries that verify but are not events, or that are too large, too old or too
new: a 4xx in the webhooks' ``{error}`` shape, and nothing in the inbox."""

from __future__ import annotations

import io
import json
import time

import pytest
import sqlalchemy as sa
import stripe

from portal.extensions import db
from portal.payments.models import ProviderEvent
from tests.payments.conftest import WEBHOOK_SECRET, post_stripe_event


def _inbox() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ProviderEvent))


def _signed(payload: str | bytes, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    text = payload.decode("utf-8", "surrogatepass") if isinstance(payload, bytes) else payload
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{text}", WEBHOOK_SECRET)
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


def _post(client, payload: str | bytes, timestamp: int | None = None):
    return client.post(
        "/webhooks/stripe",
        data=payload,
        headers=_signed(payload, timestamp),
        content_type="application/json",
    )


def _refused(response, status: int, error: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json() == {"error": error}
    assert _inbox() == 0


EVENT = {"id": "evt_bad_1", "object": "event", "type": "payment_intent.succeeded"}
OBJECT = {"id": "pi_1", "object": "payment_intent"}


@pytest.mark.parametrize(
    "payload",
    [
        "[]",
        '"evt_1"',
        "null",
        "42",
        "not json at all",
        json.dumps({**EVENT, "data": {"object": OBJECT}, "id": None}),
        json.dumps({**EVENT, "data": {"object": OBJECT}, "id": ""}),
        json.dumps({**EVENT, "data": {"object": OBJECT}, "id": "evt_" + "x" * 200}),
        json.dumps({"id": "evt_1", "data": {"object": OBJECT}}),  # no type
        json.dumps({**EVENT, "type": ["payment_intent.succeeded"], "data": {"object": OBJECT}}),
        json.dumps(EVENT),  # no data
        json.dumps({**EVENT, "data": []}),
        json.dumps({**EVENT, "data": {}}),  # no data.object
        json.dumps({**EVENT, "data": {"object": "pi_1"}}),
    ],
)
def test_signed_delivery_that_is_not_an_event_is_400(client, payload):
    _refused(_post(client, payload), 400, "bad_payload")


def test_signed_but_deeply_nested_delivery_is_400(client):
    _refused(_post(client, "[" * 100_000), 400, "bad_payload")
    deep = {**EVENT, "data": {"object": {**OBJECT, "metadata": json.loads("[" * 100 + "]" * 100)}}}
    _refused(_post(client, json.dumps(deep)), 400, "bad_payload")


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps({**EVENT, "id": "evt_\u0000", "data": {"object": OBJECT}}),
        json.dumps({**EVENT, "data": {"object": {**OBJECT, "description": "a\u0000b"}}}),
        json.dumps({**EVENT, "data": {"object": {**OBJECT, "description": "a\ud800b"}}}),
        json.dumps({**EVENT, "data": {"object": {**OBJECT, "metadata": {"k\u0000": "v"}}}}),
        json.dumps({**EVENT, "data": {"object": {**OBJECT, "amount": float("nan")}}}),
    ],
)
def test_signed_delivery_that_cannot_be_stored_is_400(client, payload):
    _refused(_post(client, payload), 400, "bad_payload")


def test_signed_body_that_is_not_utf8_is_400(client):
    payload = json.dumps({**EVENT, "data": {"object": OBJECT}}).encode() + b"\xff"
    response = client.post(
        "/webhooks/stripe",
        data=payload,
        headers=_signed(payload.decode("latin-1")),
        content_type="application/json",
    )
    assert response.status_code == 400 and _inbox() == 0


@pytest.mark.parametrize("offset", [-600, -301, 301, 600, 10**9])
def test_timestamp_outside_the_tolerance_either_way_is_refused(client, offset):
    response = post_stripe_event(
        client,
        "payment_intent.succeeded",
        OBJECT,
        event_id=f"evt_skew_{offset}",
        timestamp=int(time.time()) + offset,
    )
    _refused(response, 400, "bad_signature")


@pytest.mark.parametrize("offset", [-240, 240])
def test_timestamp_within_the_tolerance_is_accepted(client, offset):
    response = post_stripe_event(
        client, "customer.created", {"id": "cus_1"}, timestamp=int(time.time()) + offset
    )
    assert response.status_code == 200 and _inbox() == 1


def test_oversized_delivery_is_413_before_its_signature_is_checked(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    payload = json.dumps({**EVENT, "data": {"object": {**OBJECT, "pad": "x" * 10_000}}})
    _refused(_post(client, payload), 413, "payload_too_large")


class CountingStream(io.RawIOBase):
    """An endless request body that counts what the app reads of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = b"x" * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


@pytest.mark.parametrize("limit", [10_000, None])
def test_a_body_without_length_is_read_only_up_to_the_limit(app, client, limit):
    """Chunked (no Content-Length): at most the limit is read, 1 MiB when the app sets none."""
    app.config["MAX_CONTENT_LENGTH"] = limit
    stream = CountingStream()
    response = client.post(
        "/webhooks/stripe",
        headers={"Stripe-Signature": "t=1,v1=00", "Transfer-Encoding": "chunked"},
        content_type="application/json",
        environ_overrides={"wsgi.input": stream, "wsgi.input_terminated": True},
    )
    _refused(response, 413, "payload_too_large")
    assert stream.read_bytes <= (limit or 1024 * 1024) + 64 * 1024


def test_oversized_mollie_delivery_is_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1_000
    response = client.post("/webhooks/mollie", data={"id": "tr_" + "a" * 2_000})
    _refused(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ({}, None),
        ({"id": ""}, None),
        ({"id": "tr_"}, None),
        ({"id": "garbage"}, None),
        ({"id": "tr_abc!"}, None),
        ({"id": "tr_ab\ncd"}, None),
        ({"id": "tr_ab\u0000c"}, None),
        ({"id": "tr_é"}, None),
        ({"id": "tr_" + "a" * 65}, None),
        ('{"id": "tr_abc"}', "application/json"),
    ],
)
def test_mollie_delivery_without_a_usable_id_is_400(client, mollie, data, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post("/webhooks/mollie", data=data, **kwargs)
    _refused(response, 400, "bad_request")
    assert mollie.state.webhook_calls == []


def test_mollie_delivery_of_an_unknown_payment_stores_nothing(client, mollie):
    response = client.post("/webhooks/mollie", data={"id": "tr_unknown123"})
    assert response.status_code == 200 and response.get_json() == {"received": 0, "new": 0}
    assert _inbox() == 0
