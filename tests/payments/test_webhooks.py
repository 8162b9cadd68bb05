"""Signed Stripe webhooks and Mollie id-only webhooks: verification, inbox, order, retries."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.invoices.states import InvoiceStatus
from portal.payments import webhooks
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentMethodStatus,
    PaymentStatus,
    ProviderEvent,
    ProviderEventStatus,
)
from portal.payments.providers import get_provider
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, TenantFactory
from tests.payments.conftest import (
    card,
    confirm_setup_intent,
    post_stripe_event,
    signed_event,
)


@pytest.fixture
def pending(app, localstripe):
    tenant = TenantFactory(name="Hook Tenant")
    db.session.commit()
    result = get_provider("stripe").setup(db.session, tenant, "card", None)
    db.session.commit()
    confirm_setup_intent(localstripe, result.client_secret, **card())
    return result.method


def _seti(method) -> dict:
    return {"id": method.setup_ref, "object": "setup_intent", "status": "succeeded"}


def _events() -> list[ProviderEvent]:
    return list(db.session.scalars(sa.select(ProviderEvent).order_by(ProviderEvent.id)))


def test_valid_signature_is_stored_and_processed(client, pending):
    response = post_stripe_event(client, "setup_intent.succeeded", _seti(pending))
    assert response.status_code == 200
    assert response.json == {"received": 1, "new": 1}
    [event] = _events()
    assert (event.provider, event.event_id, event.event_type) == (
        "stripe",
        "evt_test_1",
        "setup_intent.succeeded",
    )
    assert event.status == ProviderEventStatus.PROCESSED and event.attempts == 1
    db.session.refresh(pending)
    assert pending.status == PaymentMethodStatus.ACTIVE


def test_tampered_body_is_rejected(client, pending):
    body, headers = signed_event("setup_intent.succeeded", _seti(pending))
    tampered = body.replace(b"evt_test_1", b"evt_test_2")
    response = client.post(
        "/webhooks/stripe", data=tampered, headers=headers, content_type="application/json"
    )
    assert response.status_code == 400
    assert _events() == []
    db.session.refresh(pending)
    assert pending.status == PaymentMethodStatus.PENDING


def test_wrong_secret_and_missing_header_are_rejected(client, pending):
    body, headers = signed_event("setup_intent.succeeded", _seti(pending), secret="whsec_other")
    assert client.post("/webhooks/stripe", data=body, headers=headers).status_code == 400
    assert client.post("/webhooks/stripe", data=body).status_code == 400
    assert _events() == []


def test_stale_timestamp_is_rejected(client, pending):
    stale = int(time.time()) - 301
    response = post_stripe_event(client, "setup_intent.succeeded", _seti(pending), timestamp=stale)
    assert response.status_code == 400
    assert _events() == []
    # Within the 300 s window it is accepted.
    fresh = int(time.time()) - 250
    assert (
        post_stripe_event(
            client, "setup_intent.succeeded", _seti(pending), timestamp=fresh
        ).status_code
        == 200
    )


def test_duplicate_delivery_changes_nothing(client, pending):
    assert post_stripe_event(client, "setup_intent.succeeded", _seti(pending)).status_code == 200
    db.session.refresh(pending)
    ref, updated = pending.provider_ref, pending.updated_at
    response = post_stripe_event(client, "setup_intent.succeeded", _seti(pending))
    assert response.status_code == 200 and response.json["new"] == 0
    assert len(_events()) == 1
    db.session.refresh(pending)
    assert (pending.provider_ref, pending.updated_at) == (ref, updated)


def test_out_of_order_payment_events_change_nothing(app, client, pending, mailbox):
    """A late ``payment_failed`` after ``succeeded`` does not undo the payment."""
    provider = get_provider("stripe")
    method = provider.confirm(
        db.session, pending_tenant(pending), {"setup_intent_id": pending.setup_ref}
    )
    BillingProfileFactory(tenant=pending_tenant(pending))
    invoice = make_invoice(pending_tenant(pending))
    db.session.commit()
    payment = provider.charge(db.session, invoice, method)
    invoice.attempt_count = 1
    db.session.commit()
    assert payment.status == PaymentStatus.SUCCEEDED
    from portal.payments.collection import payment_updated

    payment_updated(db.session, payment)
    db.session.commit()
    assert invoice.status == InvoiceStatus.PAID

    pi = {
        "id": payment.provider_ref,
        "object": "payment_intent",
        "status": "requires_payment_method",
    }
    response = post_stripe_event(client, "payment_intent.payment_failed", pi, event_id="evt_old")
    assert response.status_code == 200
    response = post_stripe_event(client, "payment_intent.succeeded", pi, event_id="evt_new")
    assert response.status_code == 200
    db.session.expire_all()
    payment = db.session.get(Payment, payment.id)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert db.session.get(type(invoice), invoice.id).status == InvoiceStatus.PAID
    assert {e.status for e in _events()} == {ProviderEventStatus.IGNORED}
    assert mailbox.messages == []


def pending_tenant(method: PaymentMethod):
    from portal.tenancy.models import Tenant

    return db.session.get(Tenant, method.tenant_id)


def test_event_for_unknown_objects_is_ignored(client, localstripe):
    response = post_stripe_event(
        client, "customer.created", {"id": "cus_x", "object": "customer"}, event_id="evt_c"
    )
    assert response.status_code == 200
    [event] = _events()
    assert event.status == ProviderEventStatus.IGNORED


def test_failed_processing_is_recorded_and_retried(app, client, pending, monkeypatch):
    from portal.payments.providers.stripe import StripeProvider

    calls = []

    def flaky(self, session, event):
        calls.append(event.event_id)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return True

    monkeypatch.setattr(StripeProvider, "handle_event", flaky)
    app.config["QUEUE_IMMEDIATE"] = False  # keep the task for a manual retry
    from portal.extensions import queue

    queue._immediate = False
    try:
        assert (
            post_stripe_event(client, "setup_intent.succeeded", _seti(pending)).status_code == 200
        )
    finally:
        queue._immediate = True
    [event] = _events()
    assert event.status == ProviderEventStatus.RECEIVED
    with pytest.raises(RuntimeError):
        webhooks.process_event(db.session, event.id)
    db.session.expire_all()
    event = db.session.get(ProviderEvent, event.id)
    assert event.status == ProviderEventStatus.FAILED and "hiccup" in event.last_error
    assert webhooks.process_event(db.session, event.id) == ProviderEventStatus.PROCESSED
    assert db.session.get(ProviderEvent, event.id).attempts == 2


def test_unknown_provider_webhook_is_404(client):
    assert client.post("/webhooks/crypto", data=b"{}").status_code == 404


def test_mollie_webhook_refetches_and_dedupes(app, client, mollie):
    tenant = TenantFactory(name="Mollie Hook")
    db.session.commit()
    result = get_provider("mollie").setup(db.session, tenant, "directdebit", None)
    db.session.commit()
    tr = result.method.setup_ref
    # A forged "paid" id for an open payment activates nothing: the server re-fetches.
    assert client.post("/webhooks/mollie", data={"id": tr}).status_code == 200
    db.session.refresh(result.method)
    assert result.method.status == PaymentMethodStatus.PENDING
    mollie.state.deliver_webhooks = False
    import requests

    requests.post(f"{mollie.url}/_test/payments/{tr}/status", json={"status": "paid"}, timeout=5)
    assert client.post("/webhooks/mollie", data={"id": tr}).status_code == 200
    assert client.post("/webhooks/mollie", data={"id": tr}).json["new"] == 0
    db.session.refresh(result.method)
    assert result.method.status == PaymentMethodStatus.ACTIVE
    assert result.method.provider_ref.startswith("mdt_")
    assert [e.event_id for e in _events()] == [f"{tr}:open", f"{tr}:paid"]
    assert client.post("/webhooks/mollie", data={"id": "tr_unknown"}).status_code == 200
    assert client.post("/webhooks/mollie", data={"id": "<script>"}).status_code == 400
