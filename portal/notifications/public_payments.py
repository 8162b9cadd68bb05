""" "Pay now" from a signed link: the payments layer, driven by someone without a login.

A billing contact who opens an invoice link may pay it: with the tenant's default method
when it has one (the same collection the dunning runs), else through a redirect provider's
checkout that saves a method and then charges it. Nothing here shows the tenant's methods;
the page only learns which of these paths is open.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.invoices.models import Invoice
from portal.payments.collection import collect_invoice
from portal.payments.methods import default_method
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentMethodStatus,
    PaymentStatus,
)
from portal.payments.providers import (
    Provider,
    ProviderError,
    UnknownProvider,
    configured_providers,
    get_provider,
)
from portal.tenancy.models import Tenant


@dataclass(frozen=True)
class PayOptions:
    """What "pay now" can do for an invoice right now.

    :ivar mode: "saved_method" (charge the default method), "checkout" (redirect to a
        provider), "pending" (a payment is under way), or None (nothing to pay online).
    :ivar provider_name: the checkout provider's name for the button.
    """

    mode: str | None
    provider_name: str | None = None


def _in_flight(session: Session, invoice: Invoice) -> bool:
    return bool(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Payment)
            .where(
                Payment.invoice_id == invoice.id,
                Payment.status.in_([PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION]),
            )
        )
    )


def _usable_default(session: Session, tenant: Tenant) -> PaymentMethod | None:
    method = default_method(session, tenant)
    if method is None:
        return None
    try:
        get_provider(method.provider)
    except UnknownProvider:
        return None
    return method


def _checkout_provider() -> Provider | None:
    """The first configured redirect provider (Mollie): its checkout needs no script here."""
    for provider in configured_providers():
        if provider.flow == "redirect":
            return provider
    return None


def pay_options(session: Session, invoice: Invoice) -> PayOptions:
    """Which pay-now path the public page offers for ``invoice``."""
    if not invoice.status.is_open or invoice.amount_open_minor <= 0:
        return PayOptions(None)
    if _in_flight(session, invoice):
        return PayOptions("pending")
    tenant = session.get_one(Tenant, invoice.tenant_id)
    if _usable_default(session, tenant) is not None:
        return PayOptions("saved_method")
    provider = _checkout_provider()
    if provider is not None:
        return PayOptions("checkout", provider.name)
    return PayOptions(None)


@dataclass(frozen=True)
class PayOutcome:
    """The result of "pay now": a payment's status, or where to send the browser."""

    status: str  # "succeeded", "pending", "requires_action", "failed", "redirect", "none"
    redirect_url: str | None = None
    message: str | None = None


def pay_now(session: Session, invoice: Invoice, return_url: str) -> PayOutcome:
    """Charge the default method, or start a checkout that comes back to ``return_url``.

    The checkout saves a method at the provider and sends the browser back to
    ``return_url``, where :func:`finish_checkout` confirms it and charges the invoice.

    :raise ProviderError: when the provider refuses or cannot be reached.
    """
    options = pay_options(session, invoice)
    if options.mode == "saved_method":
        payment = collect_invoice(session, invoice)
        return _outcome(payment)
    if options.mode == "checkout":
        provider = _checkout_provider()
        assert provider is not None
        tenant = session.get_one(Tenant, invoice.tenant_id)
        method_type = "creditcard" if "creditcard" in provider.method_types else None
        result = provider.setup(
            session, tenant, method_type or provider.method_types[0], return_url
        )
        return PayOutcome("redirect", redirect_url=result.redirect_url)
    return PayOutcome("pending" if options.mode == "pending" else "none")


def finish_checkout(session: Session, invoice: Invoice) -> PayOutcome:
    """After the provider's checkout: confirm the method it saved and charge the invoice.

    The method is the tenant's newest pending setup at a redirect provider; the provider
    is asked for its state, so returning without paying confirms nothing.

    :raise ProviderError: "not_found" without a pending setup, or the provider's refusal.
    """
    tenant = session.get_one(Tenant, invoice.tenant_id)
    provider = _checkout_provider()
    method = None
    if provider is not None:
        method = session.scalars(
            sa.select(PaymentMethod)
            .where(
                PaymentMethod.tenant_id == tenant.id,
                PaymentMethod.provider == provider.slug,
                PaymentMethod.status == PaymentMethodStatus.PENDING,
            )
            .order_by(PaymentMethod.id.desc())
            .limit(1)
        ).first()
    if provider is None or method is None:  # without a provider there is no method either
        if not invoice.status.is_open or invoice.amount_open_minor <= 0:
            return PayOutcome("succeeded")
        raise ProviderError("No such payment method setup.", "not_found")
    provider.confirm(session, tenant, {"payment_method_id": str(method.public_id)})
    if not invoice.status.is_open or invoice.amount_open_minor <= 0:
        return PayOutcome("succeeded")
    if _in_flight(session, invoice):
        return PayOutcome("pending")
    if _usable_default(session, tenant) is None:
        return PayOutcome("pending")  # the provider confirms the method later (webhook)
    return _outcome(collect_invoice(session, invoice))


def _outcome(payment: Payment | None) -> PayOutcome:
    if payment is None:
        return PayOutcome("none")
    return PayOutcome(str(payment.status), message=payment.failure_message)
