"""One effect per action: 20 concurrent requests at one invoice, payment or method.

Each race goes through the route a person or a machine uses (admin page, console API,
tenant API, account API); the losers get what a sequential second request gets.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.catalog.models import (
    Plan,
    Price,
    PriceModel,
    Subscription,
    SubscriptionChange,
    SubscriptionItem,
)
from portal.catalog.services import change_subscription_item
from portal.extensions import db
from portal.invoices.lifecycle import mark_paid
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ops.models import AuditLogEntry
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentMethodStatus,
    PaymentStatus,
    Refund,
)
from portal.tenancy.models import TokenKind
from portal.tenancy.services import create_api_token
from tests.admin.conftest import subscribe_all
from tests.factories.payments import PaymentMethodFactory
from tests.races.conftest import RACERS, fire, session_cookie

pytestmark = pytest.mark.usefixtures("ledger_checked")

CONSOLE = "/api/v1/organizations/companies"


@pytest.fixture
def admin_cookies(client, auth, world) -> dict[str, str]:
    auth.login(world.admin.email)
    return session_cookie(client)


def _token(kind: TokenKind, scopes: list[str], tenant=None) -> str:
    _, secret = create_api_token(db.session, kind=kind, tenant=tenant, name="race", scopes=scopes)
    db.session.commit()
    return secret


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _movements(invoice: Invoice, kind: MovementKind) -> int:
    return _count(
        LedgerMovement, LedgerMovement.invoice_id == invoice.id, LedgerMovement.kind == kind
    )


def _audits(action: str) -> int:
    return _count(AuditLogEntry, AuditLogEntry.action == action)


def _act(invoice: Invoice, action: str, **form: str):
    url = f"/admin/invoices/{invoice.public_id}/actions/{action}"
    return lambda client, _: client.post(url, data={"confirmed": "yes", **form})


def test_whole_invoice_credit_note_once_from_the_admin_page(app, world, admin_cookies):
    invoice = world.a.invoice
    mark_paid(db.session, invoice)
    answers = fire(
        app, _act(invoice, "credit", scope="all", reason="Double click"), cookies=admin_cookies
    )
    assert [a.status_code for a in answers] == [303] * RACERS
    notes = db.session.scalars(
        sa.select(CreditNote).where(CreditNote.invoice_id == invoice.id)
    ).all()
    assert len(notes) == 1 and notes[0].amount_due_minor == invoice.amount_due_minor
    assert _movements(invoice, MovementKind.CREDIT_NOTE) == 1
    assert _audits("invoice.credit") == 1
    db.session.refresh(invoice)
    assert invoice.amount_credited_minor == invoice.amount_due_minor


def test_partial_credit_notes_never_exceed_the_invoice(app, world, admin_cookies):
    """20 credits of one seat each on a line of 3 seats: exactly 3 are issued."""
    invoice = world.a.invoice
    seats = next(line for line in invoice.lines if line.quantity == 3)
    answers = fire(
        app,
        _act(
            invoice, "credit", scope="lines", reason="One seat", **{f"line-{seats.position}": "1"}
        ),
        cookies=admin_cookies,
    )
    assert all(a.status_code == 303 for a in answers)
    assert _count(CreditNote, CreditNote.invoice_id == invoice.id) == 3
    db.session.refresh(invoice)
    assert invoice.amount_credited_minor <= invoice.amount_due_minor


def test_mark_paid_once_from_the_console_with_different_request_ids(app, world):
    invoice = world.a.invoice
    token = _token(TokenKind.ADMIN, ["admin:read", "admin:write"])
    url = f"{CONSOLE}/billing/invoices/{invoice.public_id}/changePaidState?status=Paid"

    def call(client, _):
        return client.post(
            url,
            headers={"Authorization": f"Bearer {token}", "X-Request-id": str(uuid.uuid4())},
        )

    answers = fire(app, call)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [409] * (RACERS - 1), statuses
    refused = next(a for a in answers if a.status_code == 409).get_json()
    assert refused["errors"][0]["type"] == "already_paid"
    assert _count(Payment, Payment.invoice_id == invoice.id) == 1
    assert _movements(invoice, MovementKind.PAYMENT) == 1
    db.session.refresh(invoice)
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_paid_minor == invoice.amount_due_minor


def test_mark_paid_once_from_the_admin_page(app, world, admin_cookies):
    invoice = world.a.invoice
    fire(app, _act(invoice, "mark-paid"), cookies=admin_cookies)
    assert _count(Payment, Payment.invoice_id == invoice.id) == 1
    assert _movements(invoice, MovementKind.PAYMENT) == 1
    assert _audits("invoice.mark_paid") == 1


def test_mark_unpaid_racing_void_leaves_a_consistent_invoice(app, world, admin_cookies):
    """Half mark it unpaid, half void it: one reversal, at most one void, nothing owed twice."""
    invoice = world.a.invoice
    mark_paid(db.session, invoice)
    unpaid, void = _act(invoice, "mark-unpaid"), _act(invoice, "void")
    fire(app, lambda client, i: (unpaid if i % 2 else void)(client, i), cookies=admin_cookies)
    assert _movements(invoice, MovementKind.ADJUSTMENT) == 1
    assert _movements(invoice, MovementKind.VOID) <= 1
    db.session.refresh(invoice)
    assert invoice.status in (InvoiceStatus.SENT, InvoiceStatus.VOID)
    assert invoice.amount_paid_minor == 0
    assert (
        _count(Payment, Payment.invoice_id == invoice.id, Payment.status == PaymentStatus.SUCCEEDED)
        == 0
    )


def test_void_once_from_the_admin_page(app, world, admin_cookies):
    invoice = world.a.invoice
    fire(app, _act(invoice, "void"), cookies=admin_cookies)
    assert _movements(invoice, MovementKind.VOID) == 1
    assert _audits("invoice.void") == 1
    db.session.refresh(invoice)
    assert invoice.status == InvoiceStatus.VOID


def test_full_refund_once_from_the_account_api(app, world):
    invoice = world.a.invoice
    mark_paid(db.session, invoice)
    token = _token(TokenKind.ADMIN, ["admin:read", "admin:write"])
    url = (
        f"/api/v1/organizations/{world.a.tenant.seller.public_id}"
        f"/accounts/{world.a.tenant.public_id}/refunds"
    )

    body = {"invoiceId": str(invoice.public_id)}

    def call(client, _):
        return client.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )

    answers = fire(app, call)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [400] * (RACERS - 1), statuses
    assert _count(Refund, Refund.invoice_id == invoice.id) == 1
    payment = db.session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice.id)).one()
    assert payment.refunded_minor == payment.amount_minor


def test_payment_method_removed_once_through_the_tenant_api(app, world):
    method = world.a.payment_method
    token = _token(TokenKind.TENANT, ["billing:read", "billing:write"], tenant=world.a.tenant)

    url = f"/api/v1/billing/payment-methods/{method.public_id}"

    def call(client, _):
        return client.delete(
            url,
            headers={"Authorization": f"Bearer {token}"},
        )

    statuses = sorted(a.status_code for a in fire(app, call))
    assert statuses == [200] + [422] * (RACERS - 1), statuses
    db.session.refresh(method)
    assert method.status == PaymentMethodStatus.INACTIVE and not method.is_default


def test_payment_method_removed_once_from_the_page(app, client, auth, world):
    method = world.a.payment_method
    auth.login(world.a.owner.email)
    cookies = session_cookie(client)
    url = f"/payment-methods/{method.public_id}/remove"
    fire(app, lambda c, _: c.post(url), cookies=cookies)
    db.session.refresh(method)
    assert method.status == PaymentMethodStatus.INACTIVE
    assert method.deactivated_at is not None


def test_default_method_switched_at_once_leaves_one_default(app, client, auth, world):
    first = world.a.payment_method
    second = PaymentMethodFactory(tenant=world.a.tenant, is_default=False)
    auth.login(world.a.owner.email)
    cookies = session_cookie(client)
    urls = [f"/payment-methods/{m.public_id}/default" for m in (first, second)]

    def call(c, i):
        return c.post(urls[i % 2])

    answers = fire(app, call, cookies=cookies)
    assert all(a.status_code in (200, 303) for a in answers), [a.status_code for a in answers]
    defaults = _count(
        PaymentMethod,
        PaymentMethod.tenant_id == world.a.tenant.id,
        PaymentMethod.is_default.is_(True),
    )
    assert defaults == 1


def test_generate_now_at_once_makes_one_invoice(app, world, admin_cookies):
    subscribe_all(db.session, [world.a.tenant])
    tenant = world.a.tenant
    month = dt.date.today().strftime("%Y-%m")
    url = f"/admin/companies/{tenant.public_id}/generate"
    answers = fire(
        app,
        lambda c, _: c.post(url, data={"month": month}),
        cookies=admin_cookies,
    )
    assert [a.status_code for a in answers] == [303] * RACERS
    # Every racer lands on the same invoice page: none failed on the unique constraint.
    assert len({a.headers["Location"] for a in answers}) == 1
    start = dt.date.today().replace(day=1)
    assert _count(Invoice, Invoice.tenant_id == tenant.id, Invoice.period_start == start) == 1


def test_subscription_quantity_changed_once(app, world):
    tenant = world.a.tenant
    plan = Plan(seller_id=tenant.seller_id, code="race", name="Race")
    db.session.add(plan)
    db.session.flush()
    price = Price(
        plan_id=plan.id,
        code="seat",
        nickname="Seats",
        currency="EUR",
        model=PriceModel.PER_UNIT,
        unit_amount=Decimal("10.00"),
    )
    start = dt.date.today().replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    item = SubscriptionItem(tenant_id=tenant.id, price=price, quantity=Decimal(1))
    db.session.add(
        Subscription(
            tenant_id=tenant.id,
            currency="EUR",
            started_on=start,
            current_period_start=start,
            current_period_end=end,
            items=[item],
        )
    )
    db.session.commit()
    item_id = item.id

    def call(_, __):
        with app.app_context():
            mine = db.session.get(SubscriptionItem, item_id)
            change = change_subscription_item(db.session, mine, on=start, quantity=Decimal(5))
            db.session.commit()
            return change is not None

    assert sum(fire(app, call)) == 1
    assert _count(SubscriptionChange, SubscriptionChange.subscription_item_id == item.id) == 1
