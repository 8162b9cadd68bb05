"""Factories of sellers, tenants, users, memberships, profiles and tokens."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from portal.extensions import db
from portal.tenancy.models import BillingProfile, Membership, Seller, Tenant, User
from portal.tenancy.passwords import hash_password
from portal.tenancy.roles import Role

PASSWORD = "correct horse battery"
_PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: argon2 is slow on purpose


class BaseFactory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class SellerFactory(BaseFactory):
    class Meta:
        model = Seller

    legal_name = factory.Sequence(lambda n: f"Seller {n} GmbH")
    address_line1 = "Friedrichstraße 1"
    postal_code = "10117"
    city = "Berlin"
    country = "DE"
    vat_id = "DE811907980"
    email = "billing@seller.example"
    iban = "DE89370400440532013000"
    bic = "COBADEFFXXX"
    invoice_number_format = "INV-{year}-{seq:05d}"
    credit_note_number_format = "CN-{year}-{seq:05d}"


class TenantFactory(BaseFactory):
    class Meta:
        model = Tenant

    seller = factory.SubFactory(SellerFactory)
    name = factory.Sequence(lambda n: f"Tenant {n} Ltd")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    currency = "EUR"


class UserFactory(BaseFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    password_hash = _PASSWORD_HASH


class MembershipFactory(BaseFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.OWNER


class BillingProfileFactory(BaseFactory):
    class Meta:
        model = BillingProfile

    tenant = factory.SubFactory(TenantFactory)
    company_name = factory.LazyAttribute(lambda o: o.tenant.name)
    address_line1 = "Hauptstraße 5"
    postal_code = "20095"
    city = "Hamburg"
    country = "DE"
    billing_email = factory.Sequence(lambda n: f"billing{n}@buyer.example")
    cc_emails = factory.LazyFunction(list)
    language = "en"
    currency = "EUR"
    payment_terms_days = 14
