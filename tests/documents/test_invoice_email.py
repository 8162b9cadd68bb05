"""The invoice e-mail: queued with an attachment spec, PDF rendered at delivery."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.invoices.errors import InvoiceError
from portal.invoices.lifecycle import mark_paid
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
    assert first.attachments == [
        {"kind": "invoice_document", "invoice_id": invoice.id, "format": "pdf"}
    ]
    assert first.tenant_id == world.a.tenant.id
    assert invoice.number in first.subject
    session.commit()  # delivery runs after commit (immediately in tests)
    messages = mailbox.wait_for(2)
    assert len(messages) == 2
    for message in messages:
        [attachment] = message.iter_attachments()
        assert attachment.get_filename() == f"{invoice.number}.pdf"


@pytest.mark.parametrize(
    ("preference", "files"),
    [
        ("ubl", ["{n}.pdf", "{n}-ubl.xml"]),
        ("xrechnung", ["{n}.pdf", "{n}-xrechnung.xml"]),
        ("cii", ["{n}.pdf", "{n}-cii.xml"]),
        ("facturx", ["{n}.pdf"]),
    ],
)
def test_the_preferred_e_invoice_travels_with_the_pdf(
    app, world, session, mailbox, preference, files
):
    from portal.documents.formats import render_document

    profile = _profile(session, world.a.tenant)
    profile.einvoice_format = preference
    profile.vat_id = "DE136695976"
    profile.buyer_reference = "04011000-12345-34"
    world.a.tenant.seller.phone = "+49 40 1234567"
    invoice = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    send_invoice_email(session, invoice)
    session.commit()
    [message] = mailbox.wait_for(1)
    attachments = {a.get_filename(): a for a in message.iter_attachments()}
    names = sorted(attachments)
    expected = sorted(f.format(n=invoice.number) for f in files)
    assert len(names) == len(expected)
    for name in names:
        assert name.endswith((".pdf", ".xml"))
    # Byte for byte the documents a download gives (stored once, never rendered again).
    for name, part in attachments.items():
        fmt = preference if name.endswith(".xml") or preference == "facturx" else "pdf"
        assert (
            part.get_content() == render_document(session, invoice, fmt, invoice.language).content
        )


def test_an_e_invoice_that_cannot_be_made_refuses_the_send(app, world, session):
    from portal.notifications.delivery import InvoiceNotSendable, send_invoice

    profile = _profile(session, world.a.tenant)
    profile.einvoice_format = "xrechnung"  # without a Leitweg-ID on the invoice
    with pytest.raises(InvoiceNotSendable) as refused:
        send_invoice(session, world.a.invoice)
    assert refused.value.reason == "einvoice_unavailable"
    assert "Leitweg" in refused.value.detail or "buyer reference" in refused.value.detail.lower()
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0


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
