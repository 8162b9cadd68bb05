""" "Pay now" from a signed link: the saved default method over localstripe, or a Mollie
checkout (the stand-in) that saves a mandate and then charges it."""

from __future__ import annotations

import requests
import sqlalchemy as sa

from portal.extensions import db
from portal.invoices.states import InvoiceStatus
from portal.notifications.links import issue_link, token_for
from portal.payments.methods import set_default_method
from portal.payments.models import Payment, PaymentMethodStatus, PaymentStatus
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    app_config,
    localstripe,
    localstripe_server,
    mollie,
    mollie_server,
)
from tests.payments.test_collection import add_card


def _link(world) -> str:
    link = issue_link(db.session, world.a.invoice)
    db.session.commit()
    return f"/i/{token_for(link)}"


def test_pay_now_charges_the_saved_default_method(client, world, localstripe):  # noqa: F811
    set_default_method(db.session, world.a.tenant, add_card(world.a.tenant, localstripe))
    db.session.commit()
    path = _link(world)
    page = client.get(path).get_data(as_text=True)
    assert "Pay €102.94 now" in page
    assert "4242" not in page  # the saved method itself is not shown
    response = client.post(f"{path}/pay")
    assert response.status_code == 303 and response.location.endswith(path)
    db.session.expire_all()
    invoice = db.session.get(type(world.a.invoice), world.a.invoice.id)
    assert invoice.status == InvoiceStatus.PAID
    after = client.get(path).get_data(as_text=True)
    assert "Thank you: the invoice is paid." in after
    assert "Pay this invoice" not in after


def test_pay_now_without_a_method_goes_through_the_mollie_checkout(client, world, mollie):  # noqa: F811
    method = world.a.payment_method  # the factory card: remove it, no default is left
    method.status = PaymentMethodStatus.INACTIVE
    method.is_default = False
    db.session.commit()
    path = _link(world)
    assert "now with Mollie" in client.get(path).get_data(as_text=True)
    response = client.post(f"{path}/pay")
    assert response.status_code == 303
    checkout = response.location
    assert checkout.startswith(mollie.url + "/checkout/")
    # The payer pays at the checkout and is sent back to the link's return page.
    back = requests.post(checkout, data={"status": "paid"}, allow_redirects=False, timeout=5)
    assert back.status_code == 302
    assert back.headers["Location"] == f"http://localhost{path}/pay/return"
    done = client.get(f"{path}/pay/return")
    assert done.status_code == 303
    db.session.expire_all()
    invoice = db.session.get(type(world.a.invoice), world.a.invoice.id)
    assert invoice.status == InvoiceStatus.PAID
    payments = db.session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice.id))
    assert [p.status for p in payments] == [PaymentStatus.SUCCEEDED]


def test_pay_now_on_a_paid_invoice_does_nothing(client, world):
    from portal.invoices.lifecycle import mark_paid

    path = _link(world)
    mark_paid(db.session, world.a.invoice)
    db.session.commit()
    page = client.get(path).get_data(as_text=True)
    assert "Pay this invoice" not in page and "Paid in full" in page
    response = client.post(f"{path}/pay")
    assert response.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1


def test_pay_with_a_revoked_link_is_refused(client, world):
    from portal.notifications.links import rotate_links

    path = _link(world)
    rotate_links(db.session, world.a.invoice)
    db.session.commit()
    assert client.post(f"{path}/pay").status_code == 410
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
