"""The invoice e-mail: queued with an attachment spec, PDF rendered at delivery."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.invoices.errors import InvoiceError
from portal.invoices.services import mark_paid
from portal.notifications.emails import send_invoice_email
from portal.notifications.models import OutboxEmail, OutboxStatus
from portal.notifications.outbox import MAX_ATTEMPTS, build_message, deliver
from portal.tenancy.models import BillingProfile
from tests.factories.invoices import make_invoice


def _profile(session, tenant) -> BillingProfile:
    return session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == tenant.id)
    ).one()


def test_queues_one_email_per_send_with_the_pdf_spec(app, world, session, mailbox):
    invoice = world.a.invoice
    profile = _profile(session, world.a.tenant)
    profile.cc_emails = ["cc@buyer.example", profile.billing_email]
    first = send_invoice_email(session, invoice)
    second = send_invoice_email(session, invoice)
    assert first.id != second.id
    assert first.dedupe_key == f"invoice-sent:{invoice.public_id}:1"
    assert second.dedupe_key == f"invoice-sent:{invoice.public_id}:2"
    assert first.to_addrs == [profile.billing_email]
    assert first.cc_addrs == ["cc@buyer.example"]  # the main address is not copied again
    assert first.attachments == [{"kind": "invoice_pdf", "invoice_id": invoice.id}]
    assert first.tenant_id == world.a.tenant.id
    assert invoice.number in first.subject
    session.commit()  # delivery runs after commit (immediately in tests)
    messages = mailbox.wait_for(2)
    assert len(messages) == 2
    for message in messages:
        [attachment] = message.iter_attachments()
        assert attachment.get_filename() == f"{invoice.number}.pdf"


def test_refuses_drafts_paid_invoices_and_missing_addresses(app, world, session):
    draft = make_invoice(world.a.tenant, finalize=False, period_start=world.a.invoice.period_end)
    with pytest.raises(InvoiceError):
        send_invoice_email(session, draft)
    paid = world.b.invoice
    mark_paid(session, paid)
    with pytest.raises(InvoiceError):
        send_invoice_email(session, paid)
    session.delete(_profile(session, world.a.tenant))
    session.flush()
    with pytest.raises(InvoiceError):
        send_invoice_email(session, world.a.invoice)
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0


def _row(session, attachments, tenant_id=None) -> OutboxEmail:
    email = OutboxEmail(
        template="invoice",
        dedupe_key=f"test:{len(attachments)}:{tenant_id}:{attachments!r}"[:200],
        to_addrs=["someone@example.com"],
        subject="Subject",
        body_text="Body",
        attachments=attachments,
        tenant_id=tenant_id,
    )
    session.add(email)
    session.commit()
    return email


def test_build_message_renders_the_attachment(app, world, session):
    invoice = world.a.invoice
    email = _row(session, [{"kind": "invoice_pdf", "invoice_id": invoice.id}], world.a.tenant.id)
    message = build_message(email, "Billing <billing@test.example>", session)
    [attachment] = message.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content().startswith(b"%PDF")
    with pytest.raises(ValueError, match="pass a session"):
        build_message(email, "billing@test.example")


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "spreadsheet", "invoice_id": 1},
        {"kind": "invoice_pdf", "invoice_id": 999_999},
    ],
)
def test_unbuildable_attachments_are_retried_then_failed(app, world, session, spec):
    email = _row(session, [spec], world.a.tenant.id)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(ValueError):
            deliver(session, email.id)
    assert deliver(session, email.id) == OutboxStatus.FAILED
    session.refresh(email)
    assert email.attempts == MAX_ATTEMPTS and "ValueError" in email.last_error


def test_an_attachment_of_another_tenant_is_refused(app, world, session):
    email = _row(
        session, [{"kind": "invoice_pdf", "invoice_id": world.b.invoice.id}], world.a.tenant.id
    )
    with pytest.raises(ValueError, match="not found"):
        build_message(email, "billing@test.example", session)
