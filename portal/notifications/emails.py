"""One function per e-mail the portal sends; each renders and queues through the outbox."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import current_app, url_for
from sqlalchemy.orm import Session

from portal.documents.formats import DocumentNotAvailable, render_document
from portal.domain.money import Money
from portal.invoices.errors import InvoiceError
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.notifications.links import issue_link, link_url
from portal.notifications.models import OutboxEmail
from portal.notifications.outbox import queue_email
from portal.payments.models import PaymentMethod
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


#: E-invoice preferences that travel as a separate XML file beside the PDF.
XML_FORMATS = ("ubl", "xrechnung", "cii")
#: Preferences whose PDF carries the XML inside (Factur-X / ZUGFeRD replace the plain PDF).
HYBRID_FORMATS = ("facturx", "zugferd")


def invoice_attachments(session: Session, invoice: Invoice, profile: BillingProfile) -> list:
    """The documents the invoice e-mail carries, as the buyer's profile prefers them.

    The PDF always (the Factur-X / ZUGFeRD PDF when that is the preference), plus the XML
    e-invoice for UBL, XRechnung and CII. The e-invoice is made now, so an invoice that
    cannot have it (e.g. XRechnung without a Leitweg-ID) is refused before anything is
    queued, and the stored document is the one every later download returns.

    :raise EInvoiceUnavailable: with the reason the preferred e-invoice cannot be made.
    """
    preference = str(getattr(profile.einvoice_format, "value", profile.einvoice_format) or "")
    primary = preference if preference in HYBRID_FORMATS else "pdf"
    formats = [primary] + ([preference] if preference in XML_FORMATS else [])
    for fmt in formats:
        if fmt == "pdf":
            continue  # the plain PDF is always possible; it is rendered at delivery
        try:
            render_document(session, invoice, fmt, invoice.language)
        except DocumentNotAvailable as exc:
            raise EInvoiceUnavailable(fmt, exc.reason) from exc
    return [{"kind": "invoice_document", "invoice_id": invoice.id, "format": f} for f in formats]


class EInvoiceUnavailable(InvoiceError):
    """The e-invoice the buyer asked for cannot be made for this invoice."""

    def __init__(self, fmt: str, reason: str):
        super().__init__(reason)
        self.format = fmt
        self.reason = reason


def send_invoice_email(session: Session, invoice: Invoice) -> OutboxEmail:
    """Queue the e-mail of an issued invoice, with its PDF, to the tenant's billing contact.

    Goes to the billing profile's ``billing_email`` with its ``cc_emails`` in copy, in the
    profile's language, with the documents of :func:`invoice_attachments`. Every call
    queues a new e-mail (a re-send is a new cause): the dedupe key counts the invoice's
    earlier e-mails. The PDF is rendered at delivery.

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
    # The billing contact may have no login: the e-mail opens the invoice by a signed link.
    link = issue_link(session, invoice, purpose="view", recipient=profile.billing_email)
    return queue_email(
        session,
        template="invoice",
        to=[profile.billing_email],
        cc=[address for address in (profile.cc_emails or []) if address != profile.billing_email],
        dedupe_key=f"{prefix}{(earlier or 0) + 1}",
        locale=profile.language or "en",
        tenant_id=invoice.tenant_id,
        attachments=invoice_attachments(session, invoice, profile),
        context={
            "invoice": invoice,
            "language": profile.language or "en",
            "seller_name": seller.get("legal_name") or "",
            "contact_name": profile.contact_name or buyer.get("company_name") or "",
            "iban": seller.get("iban"),
            "bic": seller.get("bic"),
            "total": Money(invoice.tax_inclusive_minor, invoice.currency),
            "open": Money(invoice.amount_open_minor, invoice.currency),
            "invoice_url": link_url(link),
            "link_valid_until": link.expires_at.date(),
        },
    )


def _billing_profile(session: Session, tenant_id: int) -> BillingProfile | None:
    return session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == tenant_id)
    ).first()


def _recipients(profile: BillingProfile) -> tuple[list[str], list[str]]:
    cc = [a for a in (profile.cc_emails or []) if a != profile.billing_email]
    return [profile.billing_email], cc


def send_invoice_paid_email(session: Session, invoice: Invoice) -> OutboxEmail | None:
    """Queue the receipt of a paid invoice, with its PDF and a link to it.

    Once per payment of the invoice: the dedupe key carries the time it was paid, so an
    invoice marked unpaid and paid again gets a new receipt, a repeated event none. Returns
    None when the tenant has no billing e-mail address.
    """
    profile = _billing_profile(session, invoice.tenant_id)
    if profile is None or not profile.billing_email or invoice.status != InvoiceStatus.PAID:
        return None
    paid_at = invoice.paid_at.isoformat() if invoice.paid_at else "unknown"
    to, cc = _recipients(profile)
    link = issue_link(session, invoice, purpose="view", recipient=profile.billing_email)
    seller = invoice.seller_snapshot or {}
    buyer = invoice.buyer_snapshot or {}
    return queue_email(
        session,
        template="invoice_paid",
        to=to,
        cc=cc,
        dedupe_key=f"invoice-paid:{invoice.public_id}:{paid_at}",
        locale=profile.language or "en",
        tenant_id=invoice.tenant_id,
        attachments=[{"kind": "invoice_document", "invoice_id": invoice.id, "format": "pdf"}],
        context={
            "invoice": invoice,
            "language": profile.language or "en",
            "seller_name": seller.get("legal_name") or "",
            "contact_name": profile.contact_name or buyer.get("company_name") or "",
            "paid": Money(invoice.amount_paid_minor, invoice.currency),
            "paid_on": (invoice.paid_at or invoice.updated_at).date(),
            "invoice_url": link_url(link),
        },
    )


def card_expiring_key(method: PaymentMethod, expires_on: dt.date) -> str:
    """The dedupe key of a card's expiry warning: one per card and expiry date."""
    return f"card-expiring:{method.public_id}:{expires_on.isoformat()}"


def send_card_expiring_email(
    session: Session, method: PaymentMethod, expires_on: dt.date
) -> OutboxEmail | None:
    """Queue the warning that a saved card expires soon: once per card and expiry date.

    A card replaced at the provider with a new expiry gets a new warning when that one
    comes near. Returns None when the tenant has no billing e-mail address.
    """
    profile = _billing_profile(session, method.tenant_id)
    if profile is None or not profile.billing_email:
        return None
    to, cc = _recipients(profile)
    return queue_email(
        session,
        template="card_expiring",
        to=to,
        cc=cc,
        dedupe_key=card_expiring_key(method, expires_on),
        locale=profile.language or "en",
        tenant_id=method.tenant_id,
        context={
            "language": profile.language or "en",
            "contact_name": profile.contact_name or profile.company_name or "",
            "brand": (method.brand or method.method_type or "").capitalize(),
            "last4": method.last4 or "",
            "expires_on": expires_on,
            "methods_url": current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/payment-methods",
        },
    )
