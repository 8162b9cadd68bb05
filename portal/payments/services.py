"""Payment-method use cases that reach the provider: removal with detach or revocation."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from portal.payments.methods import remove_method
from portal.payments.models import PaymentMethod
from portal.payments.providers import UnknownProvider, get_provider
from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)


def remove_payment_method(session: Session, tenant: Tenant, method: PaymentMethod) -> PaymentMethod:
    """Deactivate a method (history is kept) and detach or revoke it at its provider.

    The local change is flushed first; if the provider refuses, the caller rolls back, so
    the two never disagree.

    :raise PaymentMethodRefused: when it is already removed.
    :raise ProviderError: when the provider could not detach it.
    """
    remove_method(session, tenant, method)
    try:
        provider = get_provider(method.provider)
    except UnknownProvider:
        log.warning("method %s: provider %s is not configured here", method.id, method.provider)
        return method
    provider.detach(method)
    return method
