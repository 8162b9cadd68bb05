"""Shared scenario fixtures: two tenants with members of every role, tokens and invoices."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from portal.extensions import db
from portal.invoices.models import Invoice
from portal.payments.models import PaymentMethod
from portal.tenancy.models import ApiToken, Tenant, TokenKind, User
from portal.tenancy.roles import Role
from portal.tenancy.services import create_api_token, make_platform_admin
from tests.factories.invoices import make_invoice
from tests.factories.payments import PaymentMethodFactory
from tests.factories.tenancy import (
    BillingProfileFactory,
    MembershipFactory,
    SellerFactory,
    TenantFactory,
    UserFactory,
)


@dataclass
class TenantWorld:
    """One tenant with an owner, a billing admin, a viewer, a token and an invoice."""

    tenant: Tenant
    owner: User
    billing_admin: User
    viewer: User
    token: ApiToken
    token_secret: str
    invoice: Invoice
    payment_method: PaymentMethod

    def user(self, role: Role) -> User:
        return {
            Role.OWNER: self.owner,
            Role.BILLING_ADMIN: self.billing_admin,
            Role.VIEWER: self.viewer,
        }[role]


def build_tenant_world(seller, name: str) -> TenantWorld:
    tenant = TenantFactory(seller=seller, name=name)
    BillingProfileFactory(tenant=tenant)
    members = {
        role: MembershipFactory(tenant=tenant, role=role, user=UserFactory()).user for role in Role
    }
    token, secret = create_api_token(
        db.session,
        kind=TokenKind.TENANT,
        tenant=tenant,
        name=f"{name} token",
        scopes=["billing:read"],
    )
    invoice = make_invoice(tenant)
    method = PaymentMethodFactory(tenant=tenant, is_default=True)
    return TenantWorld(
        tenant,
        members[Role.OWNER],
        members[Role.BILLING_ADMIN],
        members[Role.VIEWER],
        token,
        secret,
        invoice,
        method,
    )


@dataclass
class World:
    a: TenantWorld
    b: TenantWorld
    admin: User


@pytest.fixture
def world(app) -> World:
    """Tenants A and B of one seller, and a platform admin who belongs to neither."""
    seller = SellerFactory()
    a = build_tenant_world(seller, "Alpha Industries")
    b = build_tenant_world(seller, "Bravo Logistics")
    admin = UserFactory(email="platform-admin@example.com")
    make_platform_admin(db.session, admin)
    db.session.commit()
    return World(a, b, admin)
