"""Provider webhooks delivered many times at once (different event ids, one object)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement, MovementKind
from portal.payments.models import Payment, PaymentMethod, PaymentMethodStatus, PaymentStatus
from portal.payments.providers import get_provider
from portal.tenancy.models import Tenant
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, TenantFactory

# Stripe runs against localstripe, as in the payment tests.
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    app_config,
    card,
    confirm_setup_intent,
    localstripe,
    localstripe_server,
    mollie,
    mollie_server,
    signed_event,
)
from tests.races.conftest import RACERS, fire

pytestmark = pytest.mark.usefixtures("ledger_checked")


@pytest.fixture
def pending(app, localstripe):  # noqa: F811 (fixture)
    tenant = TenantFactory(name="Race Tenant")
    BillingProfileFactory(tenant=tenant)
    db.session.commit()
    result = get_provider("stripe").setup(db.session, tenant, "card", None)
    db.session.commit()
    confirm_setup_intent(localstripe, result.client_secret, **card())
    return result.method


def _post_all(app, event_type: str, obj: dict) -> list:
    deliveries = [signed_event(event_type, obj, event_id=f"evt_race_{i}") for i in range(RACERS)]

    def call(client, i):
        body, headers = deliveries[i]
        return client.post(
            "/webhooks/stripe", data=body, headers=headers, content_type="application/json"
        )

    return fire(app, call)


def test_setup_succeeded_at_once_activates_the_method_once(app, pending):
    answers = _post_all(
        app, "setup_intent.succeeded", {"id": pending.setup_ref, "object": "setup_intent"}
    )
    assert [a.status_code for a in answers] == [200] * RACERS
    method = db.session.get(PaymentMethod, pending.id)
    assert method.status == PaymentMethodStatus.ACTIVE and method.is_default
    defaults = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(PaymentMethod)
        .where(PaymentMethod.tenant_id == method.tenant_id, PaymentMethod.is_default.is_(True))
    )
    assert defaults == 1


def test_payment_succeeded_at_once_is_booked_once(app, pending):
    provider = get_provider("stripe")
    tenant = db.session.get(Tenant, pending.tenant_id)
    method = provider.confirm(db.session, tenant, {"setup_intent_id": pending.setup_ref})
    invoice = make_invoice(tenant)
    db.session.commit()
    payment = provider.charge(db.session, invoice, method)
    invoice.attempt_count = 1
    # As if the charge's answer was lost: only the webhooks tell that it succeeded.
    payment.status = PaymentStatus.PENDING
    payment.succeeded_at = None
    db.session.commit()
    ref = payment.provider_ref
    answers = _post_all(app, "payment_intent.succeeded", {"id": ref, "object": "payment_intent"})
    assert [a.status_code for a in answers] == [200] * RACERS
    payment = db.session.get(Payment, payment.id)
    assert payment.status == PaymentStatus.SUCCEEDED
    booked = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(LedgerMovement)
        .where(LedgerMovement.payment_id == payment.id, LedgerMovement.kind == MovementKind.PAYMENT)
    )
    assert booked == 1
    invoice = db.session.get(type(invoice), invoice.id)
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_paid_minor == invoice.amount_due_minor
