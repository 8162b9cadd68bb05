"""Mollie: a ``first`` payment by redirect creates a mandate, recurring payments collect.

The webhook carries only an id, so the server re-fetches the payment (and its mandate);
``MOLLIE_API_ENDPOINT`` selects the stand-in in ``tests/fakes/mollie.py`` (PAYMENTS.md §3).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from mollie.api.client import Client
from mollie.api.error import Error as MollieError
from mollie.api.error import NotFoundError
from mollie.api.objects.customer import Customer
from sqlalchemy.orm import Session

from portal.db import load_for_tenant, utcnow
from portal.domain.money import Money
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentMethodStatus,
    PaymentStatus,
    ProviderEvent,
    Refund,
    RefundStatus,
)
from portal.payments.providers.base import Provider, ProviderError, SetupResult, WebhookEvent
from portal.payments.refunds import refund_payment
from portal.tenancy.models import Tenant

#: A Mollie payment id as a webhook posts it (``tr_`` and ASCII letters and digits); anything
#: else is refused before Mollie is asked.
PAYMENT_ID = re.compile(r"tr_[A-Za-z0-9]{1,64}")
#: Mollie verifies the account with a first payment of this amount (EUR).
FIRST_PAYMENT = Money(1, "EUR")


def mollie_amount(money: Money) -> dict[str, str]:
    """Mollie's amount object: the value is a string with the currency's decimals."""
    return {"currency": money.currency, "value": f"{money.to_decimal():.{money.exponent}f}"}


class MollieProvider(Provider):
    """SEPA Direct Debit, credit card and PayPal mandates through Mollie."""

    slug = "mollie"
    name = "Mollie"
    method_types = ["directdebit", "creditcard", "paypal"]
    flow = "redirect"
    order = 20
    required_settings = ("MOLLIE_API_KEY",)

    @property
    def client(self) -> Client:
        client = Client(api_endpoint=self.setting("MOLLIE_API_ENDPOINT") or "", retry=0)
        client.set_api_key(self.setting("MOLLIE_API_KEY"))
        return client

    def form_action_origins(self) -> list[str]:
        endpoint = self.setting("MOLLIE_API_ENDPOINT")
        if endpoint:  # the stand-in serves its checkout itself
            parts = urlsplit(endpoint)
            return [f"{parts.scheme}://{parts.netloc}"]
        return ["https://www.mollie.com"]

    def _call(self, func, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NotFoundError as exc:
            raise ProviderError("Not found at Mollie.", "not_found") from exc
        except MollieError as exc:
            raise ProviderError(
                "Mollie could not process the request; please try again.", "provider_unavailable"
            ) from exc

    def _customer(self, ref: str) -> Customer:
        return Customer({"id": ref}, self.client)

    # -- setup and confirmation --------------------------------------------------------------

    def setup(
        self, session: Session, tenant: Tenant, method_type: str, return_url: str | None
    ) -> SetupResult:
        """Create a pending method and a ``first`` payment; the tenant pays it at Mollie."""
        self.check_method_type(method_type)
        self.check_return_url(return_url)
        customer_ref = self.customer_ref(session, tenant)
        if customer_ref is None:
            customer = self._call(
                self.client.customers.create,
                {"name": tenant.name, "metadata": {"tenant_id": str(tenant.public_id)}},
            )
            customer_ref = customer.id
        method = PaymentMethod(
            tenant_id=tenant.id,
            provider=self.slug,
            method_type=method_type,
            provider_customer_ref=customer_ref,
            status=PaymentMethodStatus.PENDING,
        )
        session.add(method)
        session.flush()
        data = {
            "amount": mollie_amount(FIRST_PAYMENT),
            "sequenceType": "first",
            "description": f"Payment method for {tenant.name}"[:255],
            "redirectUrl": return_url
            or self.public_url(f"/payment-methods/{method.public_id}/return"),
            "webhookUrl": self.public_url("/webhooks/mollie"),
            "metadata": {"tenant_id": str(tenant.public_id), "method_id": str(method.public_id)},
        }
        if method_type != "directdebit":
            # A direct-debit mandate comes from a first payment by bank (iDEAL, …) that the
            # tenant picks at checkout; cards and PayPal are asked for directly.
            data["method"] = method_type
        payment = self._call(self._customer(customer_ref).payments.create, data)
        method.setup_ref = payment.id
        session.flush()
        return SetupResult(method=method, redirect_url=payment.checkout_url)

    def confirm(self, session: Session, tenant: Tenant, confirmation_data: dict) -> PaymentMethod:
        """Activate the mandate of a paid first payment.

        ``confirmation_data``: ``{"payment_id": "tr_…"}`` or ``{"payment_method_id": <uuid>}``.

        :raise ProviderError: "not_found", "setup_failed" or "not_confirmed".
        """
        method = None
        if confirmation_data.get("payment_id"):
            method = self.find_pending(session, str(confirmation_data["payment_id"]), tenant)
        elif confirmation_data.get("payment_method_id"):
            from werkzeug.exceptions import NotFound

            try:
                method = load_for_tenant(
                    session, PaymentMethod, confirmation_data["payment_method_id"], tenant
                )
            except NotFound:
                method = None
            if method is not None and method.provider != self.slug:
                method = None
        if method is None or not method.setup_ref:
            raise ProviderError("No such payment method setup.", "not_found")
        return self._apply_first_payment(session, method)

    def _apply_first_payment(self, session: Session, method: PaymentMethod) -> PaymentMethod:
        if method.status != PaymentMethodStatus.PENDING:
            return method  # already activated (webhook or return) or removed
        payment = self._call(self.client.payments.get, method.setup_ref)
        tenant = session.get_one(Tenant, method.tenant_id)
        if (payment.metadata or {}).get("tenant_id") != str(tenant.public_id):
            raise ProviderError("No such payment method setup.", "not_found")
        if payment.status in ("failed", "canceled", "expired"):
            raise ProviderError(
                f"The payment at Mollie was {payment.status}; the method was not added.",
                "setup_failed",
            )
        if not payment.is_paid() or not payment.mandate_id:
            raise ProviderError("The payment method is not confirmed yet.", "not_confirmed")
        mandate = self._call(payment.get_mandate)
        if mandate.status == "invalid":
            raise ProviderError("Mollie did not grant a mandate.", "setup_failed")
        self._copy_details(method, mandate)
        self.activate(session, method, mandate.id)
        return method

    @staticmethod
    def _copy_details(method: PaymentMethod, mandate: Any) -> None:
        details = mandate.details or {}
        method.method_type = mandate.method or method.method_type
        method.mandate_reference = mandate.mandate_reference
        if mandate.method == "directdebit":
            account = (details.get("consumerAccount") or "").replace(" ", "")
            method.last4 = account[-4:] or None
            method.holder_name = details.get("consumerName")
            method.brand = details.get("consumerBic")
        elif mandate.method == "creditcard":
            method.last4 = (details.get("cardNumber") or "")[-4:] or None
            method.holder_name = details.get("cardHolder")
            method.brand = (details.get("cardLabel") or "").lower() or None
            expiry = details.get("cardExpiryDate")  # "YYYY-MM-DD"
            if expiry:
                method.exp_year, method.exp_month = int(expiry[:4]), int(expiry[5:7])
        elif mandate.method == "paypal":
            method.holder_name = details.get("consumerName")

    # -- collection --------------------------------------------------------------------------

    def charge(self, session: Session, invoice: Any, method: PaymentMethod) -> Payment:
        """Collect the open amount of ``invoice`` with a recurring payment on the mandate.

        A revoked mandate deactivates the method and fails the attempt.
        """
        payment = Payment(
            tenant_id=invoice.tenant_id,
            invoice_id=invoice.id,
            payment_method_id=method.id,
            provider=self.slug,
            amount_minor=invoice.amount_open_minor,
            currency=invoice.currency,
            status=PaymentStatus.PENDING,
            attempt=invoice.attempt_count + 1,
        )
        session.add(payment)
        session.flush()
        # setup() creates every Mollie method with its customer.
        assert method.provider_customer_ref is not None
        customer = self._customer(method.provider_customer_ref)
        try:
            mandate = customer.mandates.get(method.provider_ref)
            valid = mandate.status == "valid" or mandate.status == "pending"
        except NotFoundError:
            valid = False
        except MollieError:
            return self._failed(session, payment, "provider_error", "Mollie could not be reached.")
        if not valid:
            self.deactivate(session, method)
            return self._failed(
                session, payment, "mandate_revoked", "The mandate was revoked at Mollie."
            )
        try:
            created = customer.payments.create(
                {
                    "amount": mollie_amount(Money(payment.amount_minor, payment.currency)),
                    "sequenceType": "recurring",
                    "mandateId": method.provider_ref,
                    "description": f"Invoice {invoice.number}",
                    "webhookUrl": self.public_url("/webhooks/mollie"),
                    "metadata": {
                        "tenant_id": str(invoice.tenant_id),
                        "invoice_id": str(invoice.public_id),
                        "payment_id": str(payment.public_id),
                    },
                },
                idempotency_key=f"payment-{payment.public_id}",
            )
        except MollieError as exc:
            return self._failed(session, payment, "provider_error", f"Mollie: {exc}"[:500])
        payment.provider_ref = created.id
        self.apply_status(payment, created)
        session.flush()
        return payment

    @staticmethod
    def _failed(session: Session, payment: Payment, code: str, message: str) -> Payment:
        payment.status = PaymentStatus.FAILED
        payment.failure_code = code
        payment.failure_message = message
        session.flush()
        return payment

    @staticmethod
    def apply_status(payment: Payment, remote: Any) -> None:
        """Copy a Mollie payment's status onto ``payment``; a final status never changes."""
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED):
            return
        status = remote.status
        if status == "paid":
            payment.status = PaymentStatus.SUCCEEDED
            payment.succeeded_at = payment.succeeded_at or utcnow()
        elif status in ("failed", "expired"):
            payment.status = PaymentStatus.FAILED
            payment.failure_code = status
            payment.failure_message = (
                ((remote.get("details") or {}).get("failureMessage"))
                or f"The payment {status} at Mollie."
            )[:500]
        elif status == "canceled":
            payment.status = PaymentStatus.CANCELED
        else:  # open, pending, authorized
            payment.status = PaymentStatus.PENDING

    def refund(
        self, session: Session, payment: Payment, amount: Money, *, reason: str | None = None
    ) -> Refund:
        """Refund ``amount`` of a payment at Mollie and record it."""
        refund = refund_payment(session, payment, amount, reason=reason)
        remote = self._call(self.client.payments.get, payment.provider_ref)
        created = self._call(
            remote.refunds.create,
            {"amount": mollie_amount(amount), "description": (reason or "Refund")[:140]},
        )
        refund.provider_ref = created.id
        refund.status = (
            RefundStatus.SUCCEEDED
            if created.get("status") in ("refunded", "processing", "pending", "queued")
            else RefundStatus.PENDING
        )
        session.flush()
        return refund

    def detach(self, method: PaymentMethod) -> None:
        """Revoke the mandate at Mollie."""
        if not method.provider_ref or not method.provider_customer_ref:
            return
        try:
            self._customer(method.provider_customer_ref).mandates.delete(method.provider_ref)
        except NotFoundError:
            return  # already revoked
        except MollieError as exc:
            raise ProviderError(
                "Mollie could not revoke the mandate; please try again.", "provider_unavailable"
            ) from exc

    # -- webhooks ----------------------------------------------------------------------------

    def parse_webhook(self, req: Any) -> list[WebhookEvent]:
        """Take the posted id and re-fetch the payment: the delivery itself is not trusted.

        The inbox key is the payment id with its current status, so each status change is
        processed once. An unknown id gives no event (Mollie is answered 200 either way).
        """
        payment_id = (req.form.get("id") or "").strip()
        if not PAYMENT_ID.fullmatch(payment_id):
            raise ProviderError("Expected a payment id.", "bad_request")
        try:
            payment = self.client.payments.get(payment_id)
        except NotFoundError:
            return []
        except MollieError as exc:
            raise ProviderError("Mollie could not be reached.", "provider_unavailable") from exc
        return [
            WebhookEvent(
                event_id=f"{payment.id}:{payment.status}",
                event_type=f"payment.{payment.status}",
                payload={
                    "id": payment.id,
                    "status": payment.status,
                    "sequenceType": payment.sequence_type,
                    "customerId": payment.customer_id,
                    "mandateId": payment.mandate_id,
                },
            )
        ]

    def handle_event(self, session: Session, event: ProviderEvent) -> bool:
        """Activate the method of a first payment, or update a recurring payment."""
        payment_id = event.payload.get("id") or ""
        method = self.find_pending(session, payment_id)
        if method is not None:
            if method.status != PaymentMethodStatus.PENDING:
                return False
            try:
                self._apply_first_payment(session, method)
            except ProviderError as exc:
                if exc.code in ("not_confirmed", "setup_failed", "not_found"):
                    return False
                raise
            return True
        payment = session.scalars(
            sa.select(Payment)
            .where(Payment.provider == self.slug, Payment.provider_ref == payment_id)
            .with_for_update()
        ).first()
        if payment is None:
            return False
        # Here, not at the top: collection imports the providers to charge invoices.
        from portal.payments.collection import payment_updated

        before = payment.status
        self.apply_status(payment, self._call(self.client.payments.get, payment_id))
        session.flush()
        if payment.status != before:
            payment_updated(session, payment)
        return payment.status != before
