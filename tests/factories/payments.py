"""Factories of payment methods."""

from __future__ import annotations

import factory

from portal.payments.models import PaymentMethod, PaymentMethodStatus
from tests.factories.tenancy import BaseFactory, TenantFactory


class PaymentMethodFactory(BaseFactory):
    class Meta:
        model = PaymentMethod

    tenant_id = factory.LazyAttribute(lambda o: o.tenant.id)
    provider = "stripe"
    method_type = "card"
    provider_ref = factory.Sequence(lambda n: f"pm_test_{n}")
    status = PaymentMethodStatus.ACTIVE
    brand = "visa"
    last4 = "4242"
    exp_month = 12
    exp_year = 2030

    class Params:
        tenant = factory.SubFactory(TenantFactory)
