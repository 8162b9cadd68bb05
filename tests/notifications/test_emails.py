"""E-mails end to end: queued through the outbox, delivered over SMTP to a real server
(aiosmtpd), parsed back; automatic sending, receipts, expiring cards; a failing server
leads to retries with backoff and never to a second copy."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from lxml import etree

from portal.catalog.models import CompanyBillingSettings
from portal.extensions import queue
from portal.invoices.lifecycle import mark_paid, mark_unpaid
from portal.invoices.states import InvoiceStatus
from portal.notifications.delivery import send_invoice
from portal.notifications.models import OutboxEmail, OutboxStatus
from portal.notifications.outbox import deliver_email_task
from portal.notifications.triggers import (
    auto_send_invoice,
    expiring_cards,
    send_card_expiry_notices,
)
from portal.tenancy.models import BillingProfile
from tests.conftest import free_port
from tests.factories.invoices import make_invoice
from tests.factories.payments import PaymentMethodFactory

LINK = re.compile(r"http://localhost/i/[A-Za-z0-9_.\-]+")


def _profile(session, tenant) -> BillingProfile:
    return session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == tenant.id)
    ).one()


def _parts(message) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def _attachments(message) -> dict[str, bytes]:
    return {a.get_filename(): a.get_content() for a in message.iter_attachments()}


def _october(world):
    return make_invoice(
        world.a.tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )


# --- The invoice e-mail --------------------------------------------------------------------


def test_invoice_email_with_documents_and_a_signed_link(client, session, world, mailbox):
    profile = _profile(session, world.a.tenant)
    profile.einvoice_format = "cii"
    profile.cc_emails = ["controller@buyer.example"]
    invoice = world.a.invoice
    send_invoice(session, invoice)
    session.commit()
    [message] = mailbox.wait_for(1)
    assert message["To"] == profile.billing_email
    assert message["Cc"] == "controller@buyer.example"
    assert invoice.number in message["Subject"]
    assert set(message["X-Envelope-To"].split(", ")) == {
        profile.billing_email,
        "controller@buyer.example",
    }
    text, html = _parts(message)
    [url] = set(LINK.findall(text))
    assert url in html
    files = _attachments(message)
    assert sorted(files) == sorted([f"{invoice.number}.pdf", f"{invoice.number}-cii.xml"])
    assert files[f"{invoice.number}.pdf"].startswith(b"%PDF")
    xml = etree.fromstring(files[f"{invoice.number}-cii.xml"])
    ids = xml.xpath("//*[local-name()='ExchangedDocument']/*[local-name()='ID']/text()")
    assert ids == [invoice.number]
    # The link opens this invoice, without a login, and downloads the same PDF.
    page = client.get(urlsplit(url).path)
    assert page.status_code == 200 and invoice.number in page.get_data(as_text=True)
    pdf = client.get(urlsplit(url).path + "/download?format=pdf")
    assert pdf.data == files[f"{invoice.number}.pdf"]
    session.expire_all()
    assert session.get(type(invoice), invoice.id).status == InvoiceStatus.SENT


def test_invoice_email_is_in_the_buyers_language(session, world, mailbox):
    _profile(session, world.a.tenant).language = "de"
    send_invoice(session, world.a.invoice)
    session.commit()
    [message] = mailbox.wait_for(1)
    assert message["Subject"].startswith("Rechnung")
    text, html = _parts(message)
    assert "Hallo" in text and 'lang="de"' in html


# --- Automatic sending after finalization -------------------------------------------------


def test_finalized_invoice_is_sent_when_the_company_says_so(session, world, mailbox):
    session.add(
        CompanyBillingSettings(tenant_id=world.a.tenant.id, auto_send=True, auto_collect=False)
    )
    session.commit()
    invoice = _october(world)  # finalized: the after-commit task e-mails it
    session.commit()
    [message] = mailbox.wait_for(1)
    assert invoice.number in message["Subject"]
    assert LINK.search(_parts(message)[0])
    session.expire_all()
    assert session.get(type(invoice), invoice.id).status == InvoiceStatus.SENT
    # Running the task again changes nothing: the invoice is no longer "finalized".
    assert auto_send_invoice(session, invoice.id) == "skipped"
    assert len(mailbox.wait_for(2, timeout=0.5)) == 1


def test_no_automatic_sending_without_the_setting(session, world, mailbox):
    session.add(
        CompanyBillingSettings(tenant_id=world.a.tenant.id, auto_send=False, auto_collect=False)
    )
    session.commit()
    invoice = _october(world)
    session.commit()
    assert mailbox.wait_for(1, timeout=0.5) == []
    assert auto_send_invoice(session, invoice.id) == "skipped"
    session.expire_all()
    assert session.get(type(invoice), invoice.id).status == InvoiceStatus.FINALIZED


def test_automatic_sending_without_a_recipient_is_logged_not_raised(session, world, mailbox):
    session.add(
        CompanyBillingSettings(tenant_id=world.a.tenant.id, auto_send=True, auto_collect=False)
    )
    _profile(session, world.a.tenant).billing_email = ""
    session.commit()
    invoice = _october(world)
    session.commit()
    assert auto_send_invoice(session, invoice.id) == "no_recipient"
    assert mailbox.wait_for(1, timeout=0.3) == []


# --- Receipts ------------------------------------------------------------------------------


def test_paid_invoice_gets_one_receipt_with_its_pdf(session, world, mailbox):
    invoice = world.a.invoice
    send_invoice(session, invoice)
    session.commit()
    mailbox.wait_for(1)
    mailbox.messages.clear()
    mark_paid(session, invoice)
    session.commit()
    [message] = mailbox.wait_for(1)
    assert "paid" in message["Subject"] and invoice.number in message["Subject"]
    assert list(_attachments(message)) == [f"{invoice.number}.pdf"]
    text, html = _parts(message)
    assert LINK.search(text) and LINK.search(html)
    # Paid again after an undo: a new receipt; the same payment never a second one.
    mark_unpaid(session, invoice)
    session.commit()
    mark_paid(session, invoice, at=dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC))
    session.commit()
    assert len(mailbox.wait_for(2)) == 2
    from portal.notifications.triggers import send_receipt

    send_receipt(session, invoice.id)
    assert len(mailbox.wait_for(3, timeout=0.5)) == 2


def test_no_receipt_for_an_invoice_never_sent(session, world, mailbox):
    mark_paid(session, world.a.invoice)  # e.g. a bank transfer an admin records
    session.commit()
    assert mailbox.wait_for(1, timeout=0.3) == []


def test_auto_sent_company_gets_the_receipt_even_if_paid_first(session, world, mailbox):
    from portal.notifications.triggers import send_receipt

    session.add(
        CompanyBillingSettings(tenant_id=world.a.tenant.id, auto_send=True, auto_collect=False)
    )
    session.commit()
    invoice = world.a.invoice  # finalized before the setting: not e-mailed yet
    mark_paid(session, invoice)
    session.commit()
    [message] = mailbox.wait_for(1)
    assert "paid" in message["Subject"]
    assert list(_attachments(message)) == [f"{invoice.number}.pdf"]
    assert send_receipt(session, invoice.id) == "queued"  # the same e-mail, not a new one
    assert len(mailbox.wait_for(2, timeout=0.3)) == 1


# --- Expiring cards ------------------------------------------------------------------------


def test_card_expiring_warned_once_per_card_and_expiry(session, world, mailbox):
    today = dt.date(2026, 12, 5)  # the card below works until 31 December
    soon = PaymentMethodFactory(
        tenant=world.a.tenant, is_default=False, exp_month=12, exp_year=2026, last4="1111"
    )
    PaymentMethodFactory(tenant=world.a.tenant, is_default=False, exp_month=3, exp_year=2027)
    PaymentMethodFactory(tenant=world.b.tenant, is_default=False, exp_month=10, exp_year=2026)
    session.commit()
    assert [m.id for m, _ in expiring_cards(session, today)] == [soon.id]
    assert send_card_expiry_notices(session, today) == 1
    assert send_card_expiry_notices(session, today + dt.timedelta(days=1)) == 0
    [message] = mailbox.wait_for(1)
    assert "1111" in message["Subject"]
    text, _ = _parts(message)
    assert "http://localhost/payment-methods" in text
    # A renewed card (new expiry) is warned about again when that comes near.
    soon.exp_year = 2027
    session.commit()
    assert send_card_expiry_notices(session, dt.date(2027, 12, 5)) == 1


# --- Payment failed (the payments module's e-mail, through the same outbox) ----------------


def test_payment_failed_email_links_to_the_payment_methods(session, world, mailbox):
    from portal.payments.collection import _attempt_failed

    invoice = world.a.invoice
    invoice.attempt_count = 1
    _attempt_failed(session, invoice, None, "The card was declined.")
    session.commit()
    [message] = mailbox.wait_for(1)
    text, html = _parts(message)
    assert "http://localhost/payment-methods" in text and "payment-methods" in html


# --- A failing SMTP server -----------------------------------------------------------------


class FlakyServer:
    """An SMTP server that answers 451 (try again later) to the first ``failures`` messages."""

    def __init__(self, failures: int):
        self.failures = failures
        self.attempts = 0
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook)
        self.attempts += 1
        if self.attempts <= self.failures:
            return "451 4.3.0 Try again later"
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def flaky_smtp(app):
    handler = FlakyServer(failures=2)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
    yield handler
    controller.stop()


def _run_scheduled_retries() -> list[dt.datetime]:
    """Run the retries huey scheduled, each at its due time as the worker would; their etas."""
    tasks = queue.scheduled()
    queue.storage.flush_schedule()
    for task in tasks:
        queue.execute(task, timestamp=task.eta)
    return [task.eta for task in tasks]


def test_451_is_retried_with_backoff_and_delivered_once(session, world, flaky_smtp):
    queue.storage.flush_schedule()
    send_invoice(session, world.a.invoice)
    session.commit()  # attempt 1, in the after-commit hook: 451, a retry is scheduled
    email = session.scalars(sa.select(OutboxEmail)).one()
    assert email.status == OutboxStatus.QUEUED and "451" in email.last_error
    [second_at] = _run_scheduled_retries()  # attempt 2, when due: 451 again
    [third_at] = _run_scheduled_retries()  # attempt 3, when due: accepted
    first_gap = second_at - email.created_at.replace(tzinfo=None)
    assert first_gap > dt.timedelta(seconds=25)  # a retry waits, it is not a loop
    assert third_at >= second_at
    assert deliver_email_task.task_class.default_retry_backoff == 2  # each wait doubles
    session.expire_all()
    email = session.get(OutboxEmail, email.id)
    assert email.status == OutboxStatus.SENT and email.attempts == 3
    assert len(flaky_smtp.messages) == 1
    assert flaky_smtp.messages[0]["Message-ID"] == email.message_id
    # Nothing is left to retry, and delivering the sent row again sends nothing.
    assert _run_scheduled_retries() == []
    assert deliver_email_task.call_local(email.id) == "sent"
    assert len(flaky_smtp.messages) == 1


def test_closed_port_is_retried_and_never_duplicated(app, session, world, mailbox, smtp_server):
    queue.storage.flush_schedule()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nobody listens
    send_invoice(session, world.a.invoice)
    session.commit()
    email = session.scalars(sa.select(OutboxEmail)).one()
    assert email.attempts == 1 and email.status == OutboxStatus.QUEUED
    _run_scheduled_retries()
    session.expire_all()
    assert session.get(OutboxEmail, email.id).attempts == 2
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_server[0].port}"  # it answers now
    _run_scheduled_retries()
    session.expire_all()
    assert session.get(OutboxEmail, email.id).status == OutboxStatus.SENT
    assert len(mailbox.wait_for(1)) == 1
    _run_scheduled_retries()
    assert len(mailbox.wait_for(2, timeout=0.3)) == 1
