"""Ledger reconciliation: clean after every lifecycle path, and each kind of damage found."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.domain.money import Money
from portal.extensions import db
from portal.invoices.credit_notes import CreditLine, issue_credit_note
from portal.invoices.lifecycle import mark_paid, mark_uncollectible, mark_unpaid, void_invoice
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ledger.reconciliation import LEDGER_CHECK, last_check, reconcile
from portal.ledger.services import balance
from portal.ops.models import Job
from portal.payments.models import Payment
from portal.payments.refunds import refund_payment


def _clean() -> None:
    db.session.flush()
    report = reconcile(db.session)
    assert report.clean, "\n".join(map(str, report.differences))


def _seats(invoice: Invoice):
    return next(line for line in invoice.lines if line.quantity == 3)


def test_every_lifecycle_path_reconciles(world):
    a, b = world.a.invoice, world.b.invoice
    _clean()
    issue_credit_note(db.session, a, reason="One seat", lines=[CreditLine(_seats(a), Decimal(1))])
    payment = mark_paid(db.session, a)
    refund_payment(db.session, payment, Money(500, a.currency))
    _clean()
    mark_unpaid(db.session, a)
    _clean()
    void_invoice(db.session, a)
    _clean()
    mark_uncollectible(db.session, b)
    _clean()
    mark_paid(db.session, b)
    _clean()
    assert balance(db.session, world.b.tenant).minor == 0
    # Paid, 5.00 refunded, the rest reversed as not received, then void: nothing is owed.
    assert balance(db.session, world.a.tenant).minor == 0


def test_mark_paid_after_a_partial_credit_pays_only_the_rest(world):
    invoice = world.a.invoice
    note = issue_credit_note(
        db.session, invoice, reason="One seat", lines=[CreditLine(_seats(invoice), Decimal(1))]
    )
    payment = mark_paid(db.session, invoice)
    assert payment.amount_minor == invoice.amount_due_minor - note.amount_due_minor
    assert invoice.amount_paid_minor + invoice.amount_credited_minor == invoice.amount_due_minor
    assert balance(db.session, world.a.tenant).minor == 0
    _clean()


def test_paying_a_written_off_invoice_reverses_the_write_off(world):
    invoice = world.a.invoice
    mark_uncollectible(db.session, invoice)
    assert balance(db.session, world.a.tenant).minor == 0
    mark_paid(db.session, invoice)
    assert invoice.status == InvoiceStatus.PAID
    assert balance(db.session, world.a.tenant).minor == 0  # not a credit of the total
    mark_unpaid(db.session, invoice)
    assert balance(db.session, world.a.tenant).minor == invoice.amount_due_minor
    mark_uncollectible(db.session, invoice)
    mark_paid(db.session, invoice)
    assert balance(db.session, world.a.tenant).minor == 0
    _clean()


def _movement(invoice: Invoice, kind: MovementKind) -> LedgerMovement:
    return db.session.scalars(
        sa.select(LedgerMovement).where(
            LedgerMovement.invoice_id == invoice.id, LedgerMovement.kind == kind
        )
    ).one()


def _tamper(statement: str, **params) -> None:
    """Damage the data behind the services' back, as a bug or a hand-written query would."""
    db.session.execute(sa.text(statement), params)
    db.session.expire_all()


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        ("UPDATE invoices SET amount_paid_minor = 100 WHERE id = :invoice", "amount paid"),
        ("UPDATE invoices SET amount_credited_minor = 100 WHERE id = :invoice", "amount credited"),
        (
            "UPDATE ledger_movements SET amount_minor = amount_minor + 1 "
            "WHERE invoice_id = :invoice AND kind = 'invoice'",
            "invoice movement",
        ),
        ("UPDATE invoices SET status = 'void' WHERE id = :invoice", "owed in the ledger"),
        ("DELETE FROM ledger_movements WHERE invoice_id = :invoice", "balance"),
    ],
)
def test_each_kind_of_damage_is_reported(world, damage, what):
    _clean()
    _tamper(damage, invoice=world.a.invoice.id)
    report = reconcile(db.session)
    assert what in {d.what for d in report.differences}
    assert all(d.subject for d in report.differences)
    assert world.b.invoice.number not in " ".join(d.subject for d in report.differences)


def test_payment_and_refund_damage_is_reported(world):
    invoice = world.a.invoice
    payment = mark_paid(db.session, invoice)
    refund_payment(db.session, payment, Money(300, invoice.currency))
    _clean()
    _tamper("UPDATE payments SET refunded_minor = 0 WHERE id = :p", p=payment.id)
    _tamper("DELETE FROM ledger_movements WHERE payment_id = :p AND kind = 'payment'", p=payment.id)
    whats = {d.what for d in reconcile(db.session).differences}
    assert {"refunded amount", "payment movement"} <= whats


def test_check_ledger_command_exits_non_zero_and_keeps_the_result(world, runner):
    clean = runner.invoke(args=["check-ledger"])
    assert clean.exit_code == 0, clean.output
    assert "the ledger agrees" in clean.output
    _tamper("UPDATE invoices SET amount_paid_minor = 100 WHERE id = :i", i=world.a.invoice.id)
    db.session.commit()
    damaged = runner.invoke(args=["check-ledger"])
    assert damaged.exit_code == 1
    assert f"invoice {world.a.invoice.number}: amount paid is 100" in damaged.output
    check = last_check(db.session)
    assert check.kind == LEDGER_CHECK and check.created_by == "cli"
    assert check.result["differences"][0]["what"] == "amount paid"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 2
    runner.invoke(args=["check-ledger", "--no-record"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Job)) == 2


def test_admin_page_shows_the_last_check_and_runs_one(client, auth, world):
    auth.login(world.admin.email)
    page = client.get("/admin/ledger").get_data(as_text=True)
    assert "The ledger has not been checked yet." in page
    answer = client.post("/admin/ledger/check")
    assert answer.status_code == 303
    page = client.get("/admin/ledger").get_data(as_text=True)
    assert "No differences" in page and world.admin.email in page
    _tamper("UPDATE invoices SET amount_credited_minor = 100 WHERE id = :i", i=world.a.invoice.id)
    db.session.commit()
    client.post("/admin/ledger/check")
    page = client.get("/admin/ledger").get_data(as_text=True)
    differences = len(reconcile(db.session).differences)
    assert f"{differences} differences" in page and world.a.invoice.number in page
    assert "amount credited" in page


def test_tenants_do_not_see_the_ledger_page(client, auth, world):
    auth.login(world.a.owner.email)
    assert client.get("/admin/ledger").status_code == 404
    assert client.post("/admin/ledger/check").status_code == 404


def test_database_refuses_a_second_manual_payment_and_movement(world):
    invoice = world.a.invoice
    payment = mark_paid(db.session, invoice)
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.add(
            Payment(
                tenant_id=invoice.tenant_id,
                invoice_id=invoice.id,
                provider="manual",
                amount_minor=payment.amount_minor,
                currency=invoice.currency,
                status=payment.status,
            )
        )
        db.session.flush()
    db.session.rollback()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.add(
            LedgerMovement(
                tenant_id=invoice.tenant_id,
                kind=MovementKind.PAYMENT,
                amount_minor=-1,
                currency=invoice.currency,
                description="twice",
                payment_id=payment.id,
                invoice_id=invoice.id,
            )
        )
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE invoices SET amount_credited_minor = amount_due_minor + 1 WHERE id = :i",
        "UPDATE invoices SET amount_paid_minor = amount_due_minor + 1 WHERE id = :i",
        "UPDATE invoices SET status = 'void', amount_paid_minor = 1 WHERE id = :i",
    ],
)
def test_database_refuses_amounts_beyond_the_invoice(world, statement):
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text(statement), {"i": world.a.invoice.id})
    db.session.rollback()
