"""The payment-provider interface, its errors and the helpers every adapter shares."""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from sqlalchemy.orm import Session

from portal.db import lock, utcnow
from portal.payments.methods import default_method, set_default_method
from portal.payments.models import (
    Payment,
    PaymentMethod,
    PaymentMethodStatus,
    ProviderEvent,
    Refund,
)
from portal.tenancy.models import Tenant


class ProviderError(Exception):
    """A provider refused or failed; the message is safe to show to users.

    :ivar code: a short machine-readable reason ("not_found", "declined", "bad_signature",
        "invalid_return_url", "provider_unavailable", …).
    """

    def __init__(self, message: str, code: str = "provider_error"):
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownProvider(LookupError):
    """No provider with this slug is configured."""


class UnsupportedMethodType(ValueError):
    """The provider does not offer this method type."""


@dataclass
class SetupResult:
    """What a started setup gives the client: the pending method and how to continue.

    ``client_secret`` for client-side confirmation (Stripe.js), ``redirect_url`` for
    redirect flows (Mollie checkout).
    """

    method: PaymentMethod
    client_secret: str | None = None
    redirect_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "payment_method_id": str(self.method.public_id),
            "provider": self.method.provider,
            "method_type": self.method.method_type,
            "status": str(self.method.status),
            "client_secret": self.client_secret,
            "redirect_url": self.redirect_url,
        }


@dataclass
class WebhookEvent:
    """One event parsed from a verified webhook delivery, before it enters the inbox."""

    #: Provider's event id; the inbox key.
    event_id: str
    #: Event type (payment_intent.succeeded, payment.paid, …).
    event_type: str
    #: Raw payload to store.
    payload: dict = field(default_factory=dict)


class Provider(abc.ABC):
    """Base of every adapter: subclasses set the class attributes and implement the calls
    (abstract, so an adapter missing one cannot be instantiated).

    An adapter reads its settings with :meth:`setting` (the app config, else the
    environment), so adding a provider needs its module and its environment variables only.
    """

    #: Code stored on rows ("stripe", "mollie").
    slug: ClassVar[str]
    #: Name shown to people.
    name: ClassVar[str]
    #: Method types offered.
    method_types: ClassVar[list[str]]
    #: "client_secret" (confirmed in the browser by the provider's script) or "redirect".
    flow: ClassVar[str]
    #: Settings that must all be set for the provider to be configured.
    required_settings: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any]):
        self.config = config

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def setting_from(cls, config: dict[str, Any], name: str) -> Any:
        value = config.get(name)
        if value in (None, ""):
            value = os.environ.get(name) or None
        return value

    def setting(self, name: str, default: Any = None) -> Any:
        value = self.setting_from(self.config, name)
        return default if value is None else value

    @classmethod
    def is_configured(cls, config: dict[str, Any]) -> bool:
        return all(cls.setting_from(config, name) for name in cls.required_settings)

    def frontend_config(self) -> dict[str, Any]:
        """Public data for the page or API client; never secrets."""
        return {
            "slug": self.slug,
            "name": self.name,
            "flow": self.flow,
            "method_types": list(self.method_types),
        }

    def form_action_origins(self) -> list[str]:
        """Origins a form of ours may redirect to (CSP form-action): a redirect flow's checkout."""
        return []

    # -- the interface ---------------------------------------------------------------------

    @abc.abstractmethod
    def setup(
        self, session: Session, tenant: Tenant, method_type: str, return_url: str | None
    ) -> SetupResult: ...

    @abc.abstractmethod
    def confirm(
        self, session: Session, tenant: Tenant, confirmation_data: dict
    ) -> PaymentMethod: ...

    @abc.abstractmethod
    def charge(self, session: Session, invoice: Any, method: PaymentMethod) -> Payment: ...

    @abc.abstractmethod
    def refund(
        self, session: Session, payment: Payment, amount: Any, *, reason: str | None = None
    ) -> Refund: ...

    @abc.abstractmethod
    def parse_webhook(self, req: Any) -> list[WebhookEvent]: ...

    @abc.abstractmethod
    def handle_event(self, session: Session, event: ProviderEvent) -> bool:
        """Apply one inbox event; True when it changed something we track."""
        ...

    @abc.abstractmethod
    def detach(self, method: PaymentMethod) -> None: ...

    # -- shared helpers --------------------------------------------------------------------

    def check_method_type(self, method_type: str) -> str:
        if method_type not in self.method_types:
            raise UnsupportedMethodType(
                f"{self.name} does not offer {method_type!r}; "
                f"choose one of: {', '.join(self.method_types)}"
            )
        return method_type

    def check_return_url(self, return_url: str | None) -> str | None:
        """Accept only http(s) URLs of this app or of the configured allowed origins.

        :raise ProviderError: with code "invalid_return_url".
        """
        if return_url is None:
            return None
        parts = urlsplit(str(return_url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ProviderError("return_url must be an http(s) URL", "invalid_return_url")
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        allowed = {
            _origin(self.config.get("PUBLIC_BASE_URL") or ""),
            *(_origin(o) for o in (self.config.get("PAYMENT_RETURN_ORIGINS") or [])),
        }
        if has_request_context():
            allowed.add(_origin(request.host_url))
        if origin not in allowed:
            raise ProviderError(
                "return_url must point to this portal or an allowed origin", "invalid_return_url"
            )
        return return_url

    def customer_ref(self, session: Session, tenant: Tenant) -> str | None:
        """The provider's customer id used for this tenant before, if any."""
        return session.scalar(
            sa.select(PaymentMethod.provider_customer_ref)
            .where(
                PaymentMethod.tenant_id == tenant.id,
                PaymentMethod.provider == self.slug,
                PaymentMethod.provider_customer_ref.is_not(None),
            )
            .order_by(PaymentMethod.id.desc())
            .limit(1)
        )

    def find_pending(
        self, session: Session, setup_ref: str, tenant: Tenant | None = None
    ) -> PaymentMethod | None:
        """The method whose setup is ``setup_ref`` (locked), limited to ``tenant`` if given."""
        query = sa.select(PaymentMethod).where(
            PaymentMethod.provider == self.slug, PaymentMethod.setup_ref == setup_ref
        )
        if tenant is not None:
            query = query.where(PaymentMethod.tenant_id == tenant.id)
        return session.scalars(query.with_for_update()).first()

    def activate(self, session: Session, method: PaymentMethod, provider_ref: str) -> PaymentMethod:
        """Mark a pending method active; it becomes the default when the tenant has none."""
        method.provider_ref = provider_ref
        method.status = PaymentMethodStatus.ACTIVE
        session.flush()
        tenant = lock(session, session.get_one(Tenant, method.tenant_id))  # one default at a time
        if default_method(session, tenant) is None:
            set_default_method(session, tenant, method)
        return method

    def deactivate(self, session: Session, method: PaymentMethod) -> PaymentMethod:
        """Mark a method inactive (revoked or failed at the provider); history is kept."""
        lock(session, method)
        if method.status != PaymentMethodStatus.INACTIVE:
            method.status = PaymentMethodStatus.INACTIVE
            method.is_default = False
            method.deactivated_at = utcnow()
            session.flush()
        return method

    def public_url(self, path: str) -> str:
        return (self.config.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/") + path


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def app_config() -> dict[str, Any]:
    return current_app.config


@runtime_checkable
class ConfirmsInBrowser(Protocol):
    """A provider whose setups and payments the payer confirms on our own page (Stripe.js),
    rather than at a checkout of the provider's (Mollie)."""

    def client_secret(self, method: PaymentMethod) -> str:
        """The secret the page confirms a pending method's setup with."""
        ...

    def payment_client_secret(self, payment: Payment) -> str:
        """The secret the page completes a payment's customer action (3-D Secure) with."""
        ...

    def refresh_payment(self, session: Session, payment: Payment) -> Payment:
        """Read the payment's state back from the provider after the page confirmed it."""
        ...
