"""Stripe over HTTP against localstripe: registry, setup, confirm, default, removal."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.config import UnsafePaymentConfig
from portal.extensions import db
from portal.payments.methods import default_method, set_default_method
from portal.payments.models import PaymentMethod, PaymentMethodStatus
from portal.payments.providers import (
    ProviderError,
    UnknownProvider,
    UnsupportedMethodType,
    configured_providers,
    get_provider,
)
from portal.payments.services import remove_payment_method
from tests.factories.tenancy import TenantFactory
from tests.payments.conftest import card, confirm_setup_intent, post_stripe_event, sepa


@pytest.fixture
def tenant(app):
    tenant = TenantFactory(name="Setup Tenant")
    db.session.commit()
    return tenant


def _methods(tenant) -> list[PaymentMethod]:
    return list(
        db.session.scalars(
            sa.select(PaymentMethod)
            .where(PaymentMethod.tenant_id == tenant.id)
            .order_by(PaymentMethod.id)
        )
    )


def test_registry_lists_configured_providers(app):
    providers = configured_providers()
    assert [p.slug for p in providers] == ["stripe", "mollie"]
    stripe_provider = get_provider("stripe")
    assert stripe_provider.method_types == ["card", "sepa_debit"]
    assert stripe_provider.flow == "client_secret"
    config = stripe_provider.frontend_config()
    assert config["publishable_key"] == "pk_test_portal"
    assert config["js_url"].endswith("/js.stripe.com/v3/")
    assert "sk_test" not in repr(config)
    assert get_provider("mollie").method_types == ["directdebit", "creditcard", "paypal"]
    with pytest.raises(UnknownProvider):
        get_provider("crypto")


def test_unconfigured_provider_is_unknown(app):
    app.config["MOLLIE_API_KEY"] = None
    with pytest.raises(UnknownProvider):
        get_provider("mollie")
    assert [p.slug for p in configured_providers()] == ["stripe"]


def test_fake_api_base_with_live_key_is_refused(app_config):
    from portal import create_app

    app_config["STRIPE_SECRET_KEY"] = "sk_live_oops"
    with pytest.raises(UnsafePaymentConfig):
        create_app(app_config)
    app_config["STRIPE_SECRET_KEY"] = "sk_test_x"
    app_config["MOLLIE_API_KEY"] = "live_oops"
    with pytest.raises(UnsafePaymentConfig):
        create_app(app_config)


def test_add_card_setup_and_confirm(app, tenant, localstripe):
    provider = get_provider("stripe")
    result = provider.setup(db.session, tenant, "card", None)
    db.session.commit()
    assert result.method.status == PaymentMethodStatus.PENDING
    assert result.method.setup_ref.startswith("seti_")
    assert result.client_secret.startswith(result.method.setup_ref + "_secret_")
    assert result.as_dict()["client_secret"] == result.client_secret

    with pytest.raises(ProviderError) as not_yet:
        provider.confirm(db.session, tenant, {"setup_intent_id": result.method.setup_ref})
    assert not_yet.value.code == "not_confirmed"

    assert confirm_setup_intent(localstripe, result.client_secret, **card())["status"] == (
        "succeeded"
    )
    method = provider.confirm(db.session, tenant, {"setup_intent_id": result.method.setup_ref})
    db.session.commit()
    assert method.status == PaymentMethodStatus.ACTIVE
    assert method.provider_ref.startswith("pm_")
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == (
        "visa",
        "4242",
        12,
        2030,
    )
    assert method.is_default  # the first method becomes the default
    # Confirming again is a no-op.
    assert provider.confirm(db.session, tenant, {"setup_intent_id": method.setup_ref}) is method


def test_add_sepa_debit(app, tenant, localstripe):
    provider = get_provider("stripe")
    result = provider.setup(db.session, tenant, "sepa_debit", None)
    db.session.commit()
    confirm_setup_intent(localstripe, result.client_secret, **sepa())
    method = provider.confirm(db.session, tenant, {"setup_intent_id": result.method.setup_ref})
    db.session.commit()
    assert method.method_type == "sepa_debit"
    assert method.last4 == "3000"
    assert method.status == PaymentMethodStatus.ACTIVE


def test_declined_card_is_not_activated(app, tenant, localstripe):
    provider = get_provider("stripe")
    result = provider.setup(db.session, tenant, "card", None)
    db.session.commit()
    body = confirm_setup_intent(localstripe, result.client_secret, **card("4000000000000002"))
    assert "error" in body
    with pytest.raises(ProviderError) as declined:
        provider.confirm(db.session, tenant, {"setup_intent_id": result.method.setup_ref})
    assert declined.value.code == "setup_failed"
    db.session.rollback()
    assert _methods(tenant)[0].status == PaymentMethodStatus.PENDING


def test_invalid_input_writes_nothing(app, tenant, localstripe):
    provider = get_provider("stripe")
    with pytest.raises(UnsupportedMethodType, match="card, sepa_debit"):
        provider.setup(db.session, tenant, "paypal", None)
    for url in ("javascript:alert(1)", "https://evil.example/back", "ftp://localhost/x"):
        with pytest.raises(ProviderError) as bad:
            provider.setup(db.session, tenant, "card", url)
        assert bad.value.code == "invalid_return_url"
    assert _methods(tenant) == []
    # This app's own origin is accepted.
    provider.setup(db.session, tenant, "card", "http://localhost/payment-methods")


def test_confirm_of_another_tenant_is_not_found(app, tenant, localstripe):
    provider = get_provider("stripe")
    other = TenantFactory(name="Other")
    result = provider.setup(db.session, tenant, "card", None)
    db.session.commit()
    confirm_setup_intent(localstripe, result.client_secret, **card())
    with pytest.raises(ProviderError) as refused:
        provider.confirm(db.session, other, {"setup_intent_id": result.method.setup_ref})
    assert refused.value.code == "not_found"
    with pytest.raises(ProviderError):
        provider.confirm(db.session, tenant, {"setup_intent_id": "seti_unknown"})


def test_webhook_and_confirm_whichever_first(app, client, tenant, localstripe):
    provider = get_provider("stripe")
    result = provider.setup(db.session, tenant, "card", None)
    db.session.commit()
    confirm_setup_intent(localstripe, result.client_secret, **card())
    seti = {"id": result.method.setup_ref, "object": "setup_intent", "status": "succeeded"}
    assert post_stripe_event(client, "setup_intent.succeeded", seti).status_code == 200
    db.session.expire_all()
    method = db.session.get(PaymentMethod, result.method.id)
    assert method.status == PaymentMethodStatus.ACTIVE
    activated_ref = method.provider_ref
    # The confirmation arriving second changes nothing.
    again = provider.confirm(db.session, tenant, {"setup_intent_id": method.setup_ref})
    assert again.provider_ref == activated_ref
    assert len(_methods(tenant)) == 1


def test_set_default_and_remove_detaches(app, tenant, localstripe):
    import stripe

    provider = get_provider("stripe")
    methods = []
    for number in ("4242424242424242", "5555555555554444"):
        result = provider.setup(db.session, tenant, "card", None)
        db.session.commit()
        confirm_setup_intent(localstripe, result.client_secret, **card(number))
        methods.append(
            provider.confirm(db.session, tenant, {"setup_intent_id": result.method.setup_ref})
        )
        db.session.commit()
    first, second = methods
    assert default_method(db.session, tenant) is first
    set_default_method(db.session, tenant, second)
    db.session.commit()
    assert default_method(db.session, tenant) is second and not first.is_default

    remove_payment_method(db.session, tenant, second)
    db.session.commit()
    assert second.status == PaymentMethodStatus.INACTIVE and second.deactivated_at
    assert default_method(db.session, tenant) is None
    pm = provider.client.v1.payment_methods.retrieve(second.provider_ref)
    assert pm.customer is None  # detached at Stripe
    assert isinstance(pm, stripe.PaymentMethod)
