"""Stripe: SetupIntent + Stripe.js to save a card or SEPA mandate, off-session PaymentIntents.

Development and tests point ``STRIPE_API_BASE`` at localstripe; its differences from real
Stripe that matter here are noted where they are handled (see PAYMENTS.md §1).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import stripe
from sqlalchemy.orm import Session
from stripe.params import PaymentIntentCreateParams

from portal.db import utcnow
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
from portal.payments.providers.base import (
    Provider,
    ProviderError,
    SetupResult,
    WebhookEvent,
)
from portal.payments.refunds import refund_payment
from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)

#: Stripe's default signature tolerance: a delivery signed longer ago is a replay, one signed
#: as far ahead comes from a clock that cannot be trusted; both are refused.
WEBHOOK_TOLERANCE_SECONDS = 300


class StripeProvider(Provider):
    """Cards and SEPA Direct Debit through Stripe."""

    slug = "stripe"
    name = "Stripe"
    method_types = ["card", "sepa_debit"]
    flow = "client_secret"
    order = 10
    required_settings = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY")

    # -- client ------------------------------------------------------------------------------

    @property
    def client(self) -> stripe.StripeClient:
        base = self.setting("STRIPE_API_BASE")
        return stripe.StripeClient(
            self.setting("STRIPE_SECRET_KEY"),
            base_addresses={"api": base} if base else None,
            max_network_retries=0 if base else 2,
        )

    def frontend_config(self) -> dict[str, Any]:
        return {
            **super().frontend_config(),
            "publishable_key": self.setting("STRIPE_PUBLISHABLE_KEY"),
            "js_url": self.setting("STRIPE_JS_URL", "https://js.stripe.com/v3/"),
        }

    def _call(self, func, *args: Any, **kwargs: Any) -> Any:
        """Call the SDK, turning its errors into ProviderError with a safe message."""
        try:
            return func(*args, **kwargs)
        except stripe.CardError as exc:
            raise ProviderError(
                exc.user_message or "The card was declined.", exc.code or "declined"
            ) from exc
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise ProviderError("Not found at Stripe.", "not_found") from exc
            raise ProviderError("Stripe refused the request.", "invalid_request") from exc
        except stripe.StripeError as exc:
            raise ProviderError(
                "Stripe could not be reached; please try again.", "provider_unavailable"
            ) from exc

    # -- setup and confirmation --------------------------------------------------------------

    def _customer(self, session: Session, tenant: Tenant) -> str:
        existing = self.customer_ref(session, tenant)
        if existing:
            return existing
        customer = self._call(
            self.client.v1.customers.create,
            params={"name": tenant.name, "metadata": {"tenant_id": str(tenant.public_id)}},
        )
        return customer.id

    def setup(
        self, session: Session, tenant: Tenant, method_type: str, return_url: str | None
    ) -> SetupResult:
        """Create a SetupIntent for off-session use and a pending method that tracks it."""
        self.check_method_type(method_type)
        self.check_return_url(return_url)
        customer = self._customer(session, tenant)
        intent = self._call(
            self.client.v1.setup_intents.create,
            params={
                "customer": customer,
                "usage": "off_session",
                # Explicit types: localstripe rejects automatic_payment_methods.
                "payment_method_types": [method_type],
                "metadata": {"tenant_id": str(tenant.public_id)},
            },
        )
        method = PaymentMethod(
            tenant_id=tenant.id,
            provider=self.slug,
            method_type=method_type,
            provider_customer_ref=customer,
            setup_ref=intent.id,
            status=PaymentMethodStatus.PENDING,
        )
        session.add(method)
        session.flush()
        return SetupResult(method=method, client_secret=intent.client_secret)

    def client_secret(self, method: PaymentMethod) -> str:
        """The client secret of a pending method's SetupIntent (it is never stored)."""
        intent = self._call(self.client.v1.setup_intents.retrieve, method.setup_ref)
        return intent.client_secret

    def confirm(self, session: Session, tenant: Tenant, confirmation_data: dict) -> PaymentMethod:
        """Activate the method of a succeeded SetupIntent ({"setup_intent_id": "seti_…"}).

        :raise ProviderError: "not_found" for an unknown or another tenant's SetupIntent,
            "setup_failed" when it was declined, "not_confirmed" while still in progress.
        """
        intent_id = str(confirmation_data.get("setup_intent_id") or "")
        method = self.find_pending(session, intent_id, tenant) if intent_id else None
        if method is None:
            raise ProviderError("No such payment method setup.", "not_found")
        return self._apply_setup_intent(session, method)

    def _apply_setup_intent(self, session: Session, method: PaymentMethod) -> PaymentMethod:
        if method.status != PaymentMethodStatus.PENDING:
            return method  # the webhook or the confirmation came first: nothing to do
        intent = self._call(self.client.v1.setup_intents.retrieve, method.setup_ref)
        tenant = session.get_one(Tenant, method.tenant_id)
        if intent.to_dict().get("metadata", {}).get("tenant_id") != str(tenant.public_id):
            raise ProviderError("No such payment method setup.", "not_found")
        if intent.status == "canceled":
            # localstripe ends a declined setup "canceled"; real Stripe asks for another method.
            raise ProviderError("The payment method was declined.", "setup_failed")
        if intent.status != "succeeded":
            raise ProviderError("The payment method is not confirmed yet.", "not_confirmed")
        pm_id = intent.payment_method
        pm = self._call(self.client.v1.payment_methods.retrieve, pm_id)
        if getattr(pm, "customer", None) is None:
            # A succeeded SetupIntent attaches the method at Stripe, but not on localstripe.
            pm = self._call(
                self.client.v1.payment_methods.attach,
                pm_id,
                params={"customer": method.provider_customer_ref},
            )
        self._copy_details(method, pm)
        self.activate(session, method, pm_id)
        if method.is_default:
            self._call(
                self.client.v1.customers.update,
                method.provider_customer_ref,
                params={"invoice_settings": {"default_payment_method": pm_id}},
            )
        return method

    @staticmethod
    def _copy_details(method: PaymentMethod, pm: Any) -> None:
        data = pm.to_dict()
        details = data.get("billing_details") or {}
        method.holder_name = (details.get("name") or None) and details["name"][:200]
        if data.get("type") == "card":
            card = data.get("card") or {}
            method.brand = card.get("brand")
            method.last4 = card.get("last4")
            method.exp_month = card.get("exp_month")
            method.exp_year = card.get("exp_year")
        elif data.get("type") == "sepa_debit":
            sepa = data.get("sepa_debit") or {}
            method.last4 = sepa.get("last4")
            method.brand = sepa.get("bank_code") or None

    # -- collection --------------------------------------------------------------------------

    def charge(self, session: Session, invoice: Any, method: PaymentMethod) -> Payment:
        """Collect the open amount of ``invoice`` off-session with ``method``.

        The payment row records the outcome: succeeded, pending (SEPA is processed later and
        reported by webhook), requires_action (3-D Secure) or failed.
        """
        amount = invoice.amount_open_minor
        payment = Payment(
            tenant_id=invoice.tenant_id,
            invoice_id=invoice.id,
            payment_method_id=method.id,
            provider=self.slug,
            amount_minor=amount,
            currency=invoice.currency,
            status=PaymentStatus.PENDING,
            attempt=invoice.attempt_count + 1,
        )
        session.add(payment)
        session.flush()
        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": invoice.currency.lower(),
            # stripe 16 types only allowed_payment_method_types (API "endive"); localstripe
            # reads this older name, which is what has been tested.
            "payment_method_types": [method.method_type],  # type: ignore[typeddict-unknown-key]
            "confirm": True,
            "off_session": True,
            # No "description": localstripe rejects it; the number is in the metadata.
            "metadata": {
                "invoice_number": invoice.number or "",
                "tenant_id": str(invoice.tenant_id),
                "invoice_id": str(invoice.public_id),
                "payment_id": str(payment.public_id),
            },
        }
        # stripe-python sends no parameter whose value is None, so these are set only when
        # known, as before.
        if method.provider_customer_ref is not None:
            params["customer"] = method.provider_customer_ref
        if method.provider_ref is not None:
            params["payment_method"] = method.provider_ref
        try:
            intent = self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": f"payment-{payment.public_id}"}
            )
        except stripe.CardError as exc:
            # Stripe's error body is a JSON object; the library types it as a bare object.
            body = exc.json_body if isinstance(exc.json_body, dict) else {}
            error = body.get("error") or {}
            intent_data = error.get("payment_intent") or {}
            payment.provider_ref = intent_data.get("id")
            payment.status = PaymentStatus.FAILED
            payment.failure_code = (error.get("decline_code") or exc.code or "card_declined")[:60]
            payment.failure_message = (exc.user_message or "The card was declined.")[:500]
            session.flush()
            return payment
        except stripe.StripeError as exc:
            log.warning("Stripe refused the charge of invoice %s: %s", invoice.id, exc)
            payment.status = PaymentStatus.FAILED
            payment.failure_code = "provider_error"
            payment.failure_message = f"Stripe: {type(exc).__name__}"[:500]
            session.flush()
            return payment
        payment.provider_ref = intent.id
        self.apply_intent_status(payment, intent)
        session.flush()
        return payment

    @staticmethod
    def apply_intent_status(payment: Payment, intent: Any) -> None:
        """Copy a PaymentIntent's status onto ``payment``; a final status never changes."""
        if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED):
            return
        status = intent.status
        if status == "succeeded":
            payment.status = PaymentStatus.SUCCEEDED
            payment.succeeded_at = payment.succeeded_at or utcnow()
        elif status == "requires_action":
            payment.status = PaymentStatus.REQUIRES_ACTION
        elif status in ("processing", "requires_capture", "requires_confirmation"):
            payment.status = PaymentStatus.PENDING
        elif status == "canceled":
            payment.status = PaymentStatus.CANCELED
        else:  # requires_payment_method: the attempt failed
            error = intent.last_payment_error
            error = error.to_dict() if error is not None else {}
            payment.status = PaymentStatus.FAILED
            payment.failure_code = (error.get("code") or "payment_failed")[:60]
            payment.failure_message = (error.get("message") or "The payment failed.")[:500]

    def payment_client_secret(self, payment: Payment) -> str:
        """The client secret of a payment's PaymentIntent, for completing 3-D Secure."""
        return self._call(
            self.client.v1.payment_intents.retrieve, payment.provider_ref
        ).client_secret

    def refresh_payment(self, session: Session, payment: Payment) -> Payment:
        """Re-read a payment's PaymentIntent and record its current status."""
        intent = self._call(self.client.v1.payment_intents.retrieve, payment.provider_ref)
        self.apply_intent_status(payment, intent)
        session.flush()
        return payment

    def refund(
        self, session: Session, payment: Payment, amount: Money, *, reason: str | None = None
    ) -> Refund:
        """Refund ``amount`` of a payment at Stripe and record it."""
        refund = refund_payment(session, payment, amount, reason=reason)
        created = self._call(
            self.client.v1.refunds.create,
            params={"payment_intent": payment.provider_ref, "amount": amount.minor},
        )
        refund.provider_ref = created.id
        refund.status = (
            RefundStatus.SUCCEEDED if created.status == "succeeded" else RefundStatus.PENDING
        )
        session.flush()
        return refund

    def detach(self, method: PaymentMethod) -> None:
        """Detach the method from the customer at Stripe (a detached method cannot be used)."""
        if not method.provider_ref:
            return
        try:
            self._call(self.client.v1.payment_methods.detach, method.provider_ref)
        except ProviderError as exc:
            if exc.code not in ("not_found", "invalid_request"):  # already detached
                raise

    # -- webhooks ----------------------------------------------------------------------------

    def parse_webhook(self, req: Any) -> list[WebhookEvent]:
        """Verify the signature on the raw body, then check the event's shape.

        :raise ProviderError: "bad_signature" for a missing or wrong signature, or one whose
            timestamp is more than the tolerance away from now (in the past: a replay; in
            the future: a clock that cannot be trusted); "bad_payload" for a signed body
            that is not an event (not a JSON object, no ``id``, ``type`` or ``data.object``).
        """
        secret = self.setting("STRIPE_WEBHOOK_SECRET")
        if not secret:
            raise ProviderError("Webhooks are not configured.", "not_configured")
        payload = req.get_data()  # the raw bytes: re-serialised JSON would not verify
        header = req.headers.get("Stripe-Signature", "")
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(
                text, header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise ProviderError("Invalid signature.", "bad_signature") from exc
        signed_at = _signed_at(header)
        if signed_at is None or abs(time.time() - signed_at) > WEBHOOK_TOLERANCE_SECONDS:
            raise ProviderError("The signature's timestamp is out of tolerance.", "bad_signature")
        try:
            event = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ProviderError("The event is not valid JSON.", "bad_payload") from exc
        data = event.get("data") if isinstance(event, dict) else None
        if not (
            isinstance(event, dict)
            and _short_text(event.get("id"), 200)
            and _short_text(event.get("type"), 100)
            and isinstance(data, dict)
            and isinstance(data.get("object"), dict)
        ):
            raise ProviderError("The event needs an id, a type and a data.object.", "bad_payload")
        return [WebhookEvent(event["id"], event["type"], event)]

    def handle_event(self, session: Session, event: ProviderEvent) -> bool:
        """Apply an event by re-reading its object from Stripe, so order does not matter."""
        obj = (event.payload.get("data") or {}).get("object") or {}
        match event.event_type:
            case "setup_intent.succeeded" | "setup_intent.setup_failed":
                method = self.find_pending(session, obj.get("id") or "")
                if method is None or method.status != PaymentMethodStatus.PENDING:
                    return False
                try:
                    self._apply_setup_intent(session, method)
                except ProviderError as exc:
                    if exc.code in ("not_confirmed", "setup_failed", "not_found"):
                        return False
                    raise
                return True
            case (
                "payment_intent.succeeded"
                | "payment_intent.payment_failed"
                | "payment_intent.processing"
                | "payment_intent.requires_action"
                | "payment_intent.canceled"
            ):
                # Here, not at the top: collection imports the providers to charge invoices.
                from portal.payments.collection import payment_updated

                payment = self._payment_by_ref(session, obj.get("id") or "")
                if payment is None:
                    return False
                before = payment.status
                self.refresh_payment(session, payment)
                if payment.status != before:
                    payment_updated(session, payment)
                return payment.status != before
            case _:
                return False

    @staticmethod
    def _payment_by_ref(session: Session, ref: str) -> Payment | None:
        import sqlalchemy as sa

        return session.scalars(
            sa.select(Payment)
            .where(Payment.provider == "stripe", Payment.provider_ref == ref)
            .with_for_update()
        ).first()


def _signed_at(header: str) -> int | None:
    """The ``t=`` timestamp of a Stripe-Signature header."""
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _short_text(value: Any, limit: int) -> bool:
    """A non-empty string of at most ``limit`` characters (the inbox's column sizes)."""
    return isinstance(value, str) and 0 < len(value) <= limit


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def csp_sources(config: dict) -> dict[str, str]:
    """The CSP sources Stripe.js needs: its script origin, the API it calls, its frames."""
    js_origin = _origin(config.get("STRIPE_JS_URL") or "https://js.stripe.com/v3/")
    api_base = config.get("STRIPE_API_BASE")
    if api_base:  # localstripe: its fake Stripe.js calls the fake API and opens no frames
        api_origin = _origin(api_base)
        return {"script": js_origin, "connect": api_origin, "frame": "'none'"}
    return {
        "script": js_origin,
        "connect": "https://api.stripe.com",
        "frame": f"{js_origin} https://hooks.stripe.com",
    }
