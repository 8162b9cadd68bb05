"""One function per e-mail the portal sends; each renders and queues through the outbox."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, url_for
from sqlalchemy.orm import Session

from portal.domain.money import Money
from portal.invoices.errors import InvoiceError
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.notifications.models import OutboxEmail
from portal.notifications.outbox import queue_email
from portal.tenancy.models import BillingProfile, User
from portal.tenancy.services import make_reset_token


def send_password_reset_email(session: Session, user: User) -> None:
    """Queue the password-reset e-mail with a signed, expiring, single-use link."""
    token = make_reset_token(user, current_app.config["SECRET_KEY"])
    reset_url = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for(
        "auth.reset_password", token=token
    )
    queue_email(
        session,
        template="password_reset",
        to=[user.email],
        # One e-mail per token: a second request in the same second reuses the first.
        dedupe_key=f"password-reset:{user.public_id}:{token[-16:]}",
        locale=user.locale or "en",
        context={
            "user": user,
            "reset_url": reset_url,
            "valid_minutes": current_app.config["PASSWORD_RESET_MAX_AGE"] // 60,
        },
    )


def send_invoice_email(session: Session, invoice: Invoice) -> OutboxEmail:
    """Queue the e-mail of an issued invoice, with its PDF, to the tenant's billing contact.

    Goes to the billing profile's ``billing_email`` with its ``cc_emails`` in copy, in the
    profile's language. Every call queues a new e-mail (a re-send is a new cause): the
    dedupe key counts the invoice's earlier e-mails. The PDF is rendered at delivery.

    :raise InvoiceError: when the invoice is not finalized or sent, or the tenant has no
        billing e-mail address.
    """
    if invoice.status not in (InvoiceStatus.FINALIZED, InvoiceStatus.SENT):
        raise InvoiceError(f"invoice {invoice.number or invoice.public_id} is {invoice.status}")
    profile = session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == invoice.tenant_id)
    ).first()
    if profile is None or not profile.billing_email:
        raise InvoiceError("the tenant has no billing e-mail address")
    prefix = f"invoice-sent:{invoice.public_id}:"
    earlier = session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxEmail)
        .where(OutboxEmail.dedupe_key.startswith(prefix, autoescape=True))
    )
    seller = invoice.seller_snapshot or {}
    buyer = invoice.buyer_snapshot or {}
    return queue_email(
        session,
        template="invoice",
        to=[profile.billing_email],
        cc=[address for address in (profile.cc_emails or []) if address != profile.billing_email],
        dedupe_key=f"{prefix}{(earlier or 0) + 1}",
        locale=profile.language or "en",
        tenant_id=invoice.tenant_id,
        attachments=[{"kind": "invoice_pdf", "invoice_id": invoice.id}],
        context={
            "invoice": invoice,
            "language": profile.language or "en",
            "seller_name": seller.get("legal_name") or "",
            "contact_name": profile.contact_name or buyer.get("company_name") or "",
            "iban": seller.get("iban"),
            "bic": seller.get("bic"),
            "total": Money(invoice.tax_inclusive_minor, invoice.currency),
            "open": Money(invoice.amount_open_minor, invoice.currency),
        },
    )
