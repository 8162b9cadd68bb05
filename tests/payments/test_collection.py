"""Collection and dunning over HTTP: Stripe off-session, Mollie first → mandate → recurring."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings
from portal.db import utcnow
from portal.extensions import db
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement, MovementKind
from portal.notifications.models import OutboxEmail
from portal.payments.collection import RETRY_DAYS, collect_due_invoices
from portal.payments.models import Payment, PaymentMethodStatus, PaymentStatus
from portal.payments.providers import ProviderError, get_provider
from portal.payments.services import remove_payment_method
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, TenantFactory
from tests.payments.conftest import card, confirm_setup_intent


@pytest.fixture
def tenant(app):
    tenant = TenantFactory(name="Collect Tenant")
    BillingProfileFactory(tenant=tenant, billing_email="billing@collect.example")
    db.session.add(CompanyBillingSettings(tenant_id=tenant.id, auto_collect=True))
    db.session.commit()
    return tenant


def add_card(tenant, localstripe, number="4242424242424242"):
    provider = get_provider("stripe")
    result = provider.setup(db.session, tenant, "card", None)
    db.session.commit()
    confirm_setup_intent(localstripe, result.client_secret, **card(number))
    method = provider.confirm(db.session, tenant, {"setup_intent_id": result.method.setup_ref})
    db.session.commit()
    return method


def add_mollie(tenant, mollie, method_type="directdebit"):
    provider = get_provider("mollie")
    result = provider.setup(db.session, tenant, method_type, None)
    db.session.commit()
    assert result.redirect_url == f"{mollie.url}/checkout/{result.method.setup_ref}"
    # The tenant pays at the checkout; the browser comes back to the redirect URL.
    response = requests.post(
        result.redirect_url, data={"status": "paid"}, allow_redirects=False, timeout=5
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/payment-methods/{result.method.public_id}/return"
    )
    method = provider.confirm(db.session, tenant, {"payment_id": result.method.setup_ref})
    db.session.commit()
    return method


def _payments(invoice) -> list[Payment]:
    return list(
        db.session.scalars(
            sa.select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.id)
        )
    )


def _emails(template: str) -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            sa.select(OutboxEmail).where(OutboxEmail.template == template).order_by(OutboxEmail.id)
        )
    )


def test_finalized_invoice_is_charged_and_paid(tenant, localstripe, mailbox):
    add_card(tenant, localstripe)
    invoice = make_invoice(tenant)
    db.session.commit()  # finalization queues the collection, which runs after commit
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.PAID
    [payment] = _payments(invoice)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_ref.startswith("pi_")
    assert payment.amount_minor == invoice.amount_due_minor
    movement = db.session.scalars(
        sa.select(LedgerMovement).where(
            LedgerMovement.payment_id == payment.id, LedgerMovement.kind == MovementKind.PAYMENT
        )
    ).one()
    assert movement.amount_minor == -invoice.amount_due_minor


def test_no_collection_when_auto_collect_is_off(tenant, localstripe):
    db.session.scalars(sa.select(CompanyBillingSettings)).one().auto_collect = False
    db.session.commit()
    add_card(tenant, localstripe)
    invoice = make_invoice(tenant)
    db.session.commit()
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.FINALIZED and _payments(invoice) == []


def test_decline_retries_on_schedule_then_uncollectible(tenant, localstripe, mailbox):
    add_card(tenant, localstripe, "4000000000000341")  # saves, but every charge is declined
    invoice = make_invoice(tenant)
    db.session.commit()
    db.session.expire_all()
    assert invoice.attempt_count == 1 and invoice.status == InvoiceStatus.FINALIZED
    [first] = _payments(invoice)
    assert first.status == PaymentStatus.FAILED and first.failure_code
    now = utcnow()
    waits = []
    for attempt, _days in enumerate(RETRY_DAYS, start=1):
        waits.append(round((invoice.next_attempt_at - now).total_seconds() / 86400))
        assert collect_due_invoices(db.session, now) == 0  # not due yet
        now = invoice.next_attempt_at + dt.timedelta(minutes=1)
        assert collect_due_invoices(db.session, now) == 1
        db.session.expire_all()
        assert invoice.attempt_count == attempt + 1
    assert waits == [1, 3, 5, 7]
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE and invoice.next_attempt_at is None
    assert len(_payments(invoice)) == 5
    emails = _emails("payment_failed")
    assert len(emails) == 5 and emails[0].to_addrs == ["billing@collect.example"]
    assert "uncollectible" in emails[-1].body_text.lower() or "no further" in emails[-1].body_text
    mailbox.wait_for(5)
    assert len(mailbox.messages) == 5


def test_three_d_secure_sends_a_link(tenant, localstripe, mailbox):
    add_card(tenant, localstripe, "4000002500003155")
    invoice = make_invoice(tenant)
    db.session.commit()
    db.session.expire_all()
    [payment] = _payments(invoice)
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.action_url == f"http://localhost/payment-methods/payments/{payment.public_id}"
    [email] = _emails("payment_action_required")
    assert payment.action_url in email.body_text
    assert invoice.status == InvoiceStatus.FINALIZED


def test_mollie_first_payment_mandate_and_recurring_charge(tenant, mollie, mailbox):
    method = add_mollie(tenant, mollie)
    assert method.status == PaymentMethodStatus.ACTIVE and method.is_default
    assert method.provider_ref.startswith("mdt_") and method.mandate_reference
    assert method.last4 == "0000"
    invoice = make_invoice(tenant)
    db.session.commit()
    db.session.expire_all()
    [payment] = _payments(invoice)
    assert payment.provider == "mollie" and payment.status == PaymentStatus.SUCCEEDED
    assert invoice.status == InvoiceStatus.PAID


def test_mollie_failed_recurring_then_revoked_mandate(tenant, mollie, mailbox):
    method = add_mollie(tenant, mollie, "creditcard")
    assert (method.method_type, method.last4, method.exp_year) == ("creditcard", "6787", 2030)
    requests.post(f"{mollie.url}/_test/recurring", json={"status": "failed"}, timeout=5)
    invoice = make_invoice(tenant)
    db.session.commit()
    db.session.expire_all()
    assert _payments(invoice)[0].status == PaymentStatus.FAILED
    assert invoice.next_attempt_at is not None
    requests.post(f"{mollie.url}/_test/mandates/{method.provider_ref}/revoke", timeout=5)
    collect_due_invoices(db.session, invoice.next_attempt_at + dt.timedelta(minutes=1))
    db.session.expire_all()
    assert _payments(invoice)[1].failure_code == "mandate_revoked"
    assert method.status == PaymentMethodStatus.INACTIVE


def test_mollie_failed_checkout_and_removal_revokes(tenant, mollie):
    provider = get_provider("mollie")
    result = provider.setup(db.session, tenant, "paypal", None)
    db.session.commit()
    requests.post(
        result.redirect_url, data={"status": "canceled"}, allow_redirects=False, timeout=5
    )
    with pytest.raises(ProviderError) as failed:
        provider.confirm(db.session, tenant, {"payment_method_id": str(result.method.public_id)})
    assert failed.value.code == "setup_failed"
    db.session.rollback()
    method = add_mollie(tenant, mollie)
    remove_payment_method(db.session, tenant, method)
    db.session.commit()
    assert mollie.state.mandates[method.provider_ref]["status"] == "invalid"
    assert method.status == PaymentMethodStatus.INACTIVE
