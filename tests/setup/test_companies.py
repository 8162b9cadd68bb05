"""Companies: validated create and change, unique slugs, archive (no new invoices, history)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.catalog.settings import company_settings
from portal.db import utcnow
from portal.invoices.models import Invoice
from portal.invoices.run import generate_now, run_invoices, start_invoice_generation
from portal.ops.audit import Actor, AdminActionRefused
from portal.ops.models import AuditLogEntry
from portal.tenancy.companies import (
    CompanyInvalid,
    archive_company,
    create_company,
    slugify,
    update_company,
)
from portal.tenancy.models import BillingProfile, Tenant
from portal.tenancy.profiles import get_billing_profile
from tests.admin.conftest import subscribe_all
from tests.factories.tenancy import SellerFactory

ACTOR = Actor(label="ops@example.com", ip_address="127.0.0.1")

PROFILE = {
    "company_name": "Nordlicht Software GmbH",
    "address_line1": "Hafenstraße 3",
    "postal_code": "20457",
    "city": "Hamburg",
    "country": "DE",
    "billing_email": "ap@nordlicht.example",
    "vat_id": "DE136695976",
}


@pytest.fixture
def seller(app, session):
    seller = SellerFactory(default_currency="EUR", default_payment_terms_days=21)
    session.commit()
    return seller


def _data(owner, **changes):
    return {
        "name": "Nordlicht Software",
        "seller": str(owner.public_id),
        "language": "de",
        "billing_profile": dict(PROFILE),
        **changes,
    }


def _counts(session) -> tuple[int, int, int]:
    return tuple(
        session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Tenant, BillingProfile, AuditLogEntry)
    )


def test_create_derives_slug_and_currency_and_audits(session, seller):
    tenant = create_company(session, _data(seller), ACTOR)
    session.commit()
    assert tenant.slug == "nordlicht-software" and tenant.currency == "EUR"
    assert tenant.seller_id == seller.id and tenant.archived_at is None
    profile = get_billing_profile(session, tenant)
    assert profile.language == "de" and profile.payment_terms_days == 21
    assert profile.currency == "EUR" and profile.vat_id == "DE136695976"
    entry = session.scalars(sa.select(AuditLogEntry)).one()
    assert entry.action == "company.create" and entry.tenant_id == tenant.id
    assert entry.data["after"]["slug"] == "nordlicht-software"
    # A second company of the same name gets the next free slug.
    again = create_company(session, _data(seller), ACTOR)
    assert again.slug == "nordlicht-software-2"


def test_create_with_billing_settings(session, seller):
    tenant = create_company(
        session,
        _data(seller, slug="nl", currency="usd", billing_settings={"billing_day": 5}),
        ACTOR,
    )
    settings = company_settings(session, tenant)
    assert tenant.currency == "USD" and settings.id is not None and settings.billing_day == 5
    assert settings.auto_finalize is True  # the defaults under the given field


def test_slugify():
    assert slugify("Bistro Lumière SARL") == "bistro-lumiere-sarl"
    assert slugify("  --ÄÖÜ & Co.--  ") == "aou-co"
    assert slugify("x" * 200) == "x" * 80


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Nul\x00Byte"}, "name"),
        ({"name": 12}, "name"),
        ({"slug": "Upper-Case"}, "slug"),
        ({"slug": "with space"}, "slug"),
        ({"slug": "trailing-"}, "slug"),
        ({"slug": "double--dash"}, "slug"),
        ({"slug": "x" * 81}, "slug"),
        ({"slug": "taken"}, "slug"),
        ({"seller": None}, "seller"),
        ({"seller": "not-a-uuid"}, "seller"),
        ({"seller": "00000000-0000-4000-8000-000000000000"}, "seller"),
        ({"seller": 5}, "seller"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "ABC"}, "currency"),
        ({"currency": 978}, "currency"),
        ({"language": "fr"}, "language"),
        ({"billing_profile": None}, "billing_profile"),
        ({"billing_profile": "Hamburg"}, "billing_profile"),
        ({"billing_profile": {**PROFILE, "country": "XX"}}, "billing_profile.country"),
        ({"billing_profile": {**PROFILE, "vat_id": "DE000"}}, "billing_profile.vat_id"),
        ({"billing_profile": {**PROFILE, "billing_email": "x"}}, "billing_profile.billing_email"),
        ({"billing_profile": {**PROFILE, "city": "Ham\x00burg"}}, "billing_profile.city"),
        ({"billing_profile": {**PROFILE, "colour": "red"}}, "billing_profile.colour"),
        ({"billing_settings": {"billing_day": 31}}, "billing_settings.billing_day"),
        ({"billing_settings": {"nonsense": 1}}, "billing_settings.nonsense"),
        ({"billing_settings": []}, "billing_settings"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(session, seller, changes, field):
    create_company(session, _data(seller, name="Taken", slug="taken"), ACTOR)
    session.commit()
    before = _counts(session)
    with pytest.raises(CompanyInvalid) as caught:
        create_company(session, _data(seller, **changes), ACTOR)
    session.rollback()
    assert field in caught.value.errors, caught.value.errors
    assert _counts(session) == before


def test_update_changes_given_fields_profile_and_settings(session, seller):
    tenant = create_company(session, _data(seller), ACTOR)
    other = SellerFactory(legal_name="Second Seller Ltd")
    session.commit()
    update_company(
        session,
        tenant,
        {
            "name": "Nordlicht AG",
            "slug": "nordlicht",
            "seller": str(other.public_id),
            "language": "en",
            "billing_profile": {"city": "Kiel", "postal_code": "24103"},
            "billing_settings": {"auto_send": True},
        },
        ACTOR,
    )
    session.commit()
    profile = get_billing_profile(session, tenant)
    assert (tenant.name, tenant.slug, tenant.seller_id) == ("Nordlicht AG", "nordlicht", other.id)
    assert (profile.city, profile.language) == ("Kiel", "en")
    assert profile.address_line1 == "Hafenstraße 3"
    assert company_settings(session, tenant).auto_send is True
    actions = session.scalars(sa.select(AuditLogEntry.action).order_by(AuditLogEntry.id)).all()
    assert actions == ["company.create", "company.update", "settings.update"]


def test_update_refusals_write_nothing(session, seller):
    tenant = create_company(session, _data(seller), ACTOR)
    create_company(session, _data(seller, name="Other", slug="other"), ACTOR)
    session.commit()
    before = _counts(session)
    for changes in (
        {"slug": "other"},
        {"name": "Renamed", "billing_profile": {"country": "ZZ"}},
        {"name": "Renamed", "billing_settings": {"discount_percent": "101"}},
        {"seller": "00000000-0000-4000-8000-000000000000"},
        {"slug": ""},
    ):
        with pytest.raises(CompanyInvalid):
            update_company(session, tenant, changes, ACTOR)
        session.rollback()
    assert _counts(session) == before
    assert session.get(Tenant, tenant.id).name == "Nordlicht Software"


def test_currency_is_locked_once_invoiced(app, session, world):
    tenant = world.a.tenant  # has an issued invoice
    with pytest.raises(CompanyInvalid) as caught:
        update_company(session, tenant, {"currency": "USD"}, ACTOR)
    assert "currency" in caught.value.errors


def test_archive_stops_new_invoices_and_keeps_history(app, session, world):
    subscribe_all(session, [world.a.tenant, world.b.tenant])
    month = utcnow().strftime("%Y-%m")
    archived = world.a.tenant
    history = {invoice.id for invoice in session.scalars(
        sa.select(Invoice).where(Invoice.tenant_id == archived.id))}  # fmt: skip
    archive_company(session, archived, ACTOR)
    session.commit()
    assert archived.archived_at is not None

    result = run_invoices(session, month)
    assert result.created == 1  # the other company only
    after = {invoice.id for invoice in session.scalars(
        sa.select(Invoice).where(Invoice.tenant_id == archived.id))}  # fmt: skip
    assert after == history and history  # nothing new, nothing lost
    other = sa.select(sa.func.count()).where(Invoice.tenant_id == world.b.tenant.id)
    assert session.scalar(other) == 2

    for refused in (
        lambda: generate_now(session, archived, month, ACTOR),
        lambda: start_invoice_generation(session, archived, month, ACTOR),
        lambda: archive_company(session, archived, ACTOR),
        lambda: update_company(session, archived, {"name": "Back"}, ACTOR),
    ):
        with pytest.raises(AdminActionRefused) as caught:
            refused()
        assert caught.value.code in {"archived", "already_archived"}
        session.rollback()
    entry = session.scalars(
        sa.select(AuditLogEntry).where(AuditLogEntry.action == "company.archive")
    ).one()
    assert entry.data["before"] == {"archived_at": None}
