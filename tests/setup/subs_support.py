"""A seller, a company and a small catalog for the subscription, charge and usage tests."""

from __future__ import annotations

from decimal import Decimal

from portal.catalog.models import (
    BillingInterval,
    Plan,
    Price,
    PriceModel,
    PriceTier,
    UsageKind,
)
from portal.extensions import db
from portal.ops.audit import Actor
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory

D = Decimal
ACTOR = Actor(label="ops@seller.example")


class Shop:
    """One seller's catalog and a way to add companies (DE buyers: 19 % VAT)."""

    def __init__(self, seller=None):
        self.seller = seller or SellerFactory(country="DE", vat_id="DE811907980")
        self.plan = Plan(seller_id=self.seller.id, code="cloud", name="Cloud")
        db.session.add(self.plan)
        db.session.flush()
        self.flat = self.price("base", PriceModel.FLAT, unit_amount=D("30.00"))
        self.seat = self.price("seat", PriceModel.PER_UNIT, unit_amount=D("10.00"))
        self.seat_pro = self.price("seat-pro", PriceModel.PER_UNIT, unit_amount=D("14.50"))
        self.api = self.price(
            "api",
            PriceModel.GRADUATED,
            tiers=((D(1000), D("0")), (None, D("0.002"))),
            metric="api_calls",
        )

    def price(
        self,
        code,
        model,
        *,
        currency="EUR",
        unit_amount=None,
        tiers=(),
        metric=None,
        interval=BillingInterval.MONTH,
        package_size=None,
    ) -> Price:
        price = Price(
            plan_id=self.plan.id,
            code=code,
            nickname=code.title(),
            currency=currency,
            model=model,
            unit_amount=unit_amount,
            package_size=package_size,
            interval=interval,
            metric=metric,
            usage_kind=UsageKind.METERED if metric else UsageKind.LICENSED,
            tiers=[
                PriceTier(position=i, up_to=up, unit_amount=amount)
                for i, (up, amount) in enumerate(tiers)
            ],
        )
        db.session.add(price)
        db.session.flush()
        return price

    def company(self, currency="EUR", **profile):
        tenant = TenantFactory(seller=self.seller, currency=currency)
        BillingProfileFactory(tenant=tenant, country="DE", currency=currency, **profile)
        db.session.flush()
        return tenant


def new_shop() -> Shop:
    """A committed shop (for the ``shop`` fixture of each test module)."""
    shop = Shop()
    db.session.commit()
    return shop
