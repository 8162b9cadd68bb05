"""Admin pages of sellers and companies: forms with inline errors, confirmation, filters."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from portal.extensions import db
from portal.ops.models import AuditLogEntry
from portal.tenancy.models import BillingProfile, Seller, Tenant
from tests.setup.logos import MALICIOUS_SVG, png

HX = {"HX-Request": "true"}

SELLER_FORM = {
    "legal_name": "Example Cloud GmbH",
    "address_line1": "Torstraße 1",
    "postal_code": "10119",
    "city": "Berlin",
    "country": "DE",
    "email": "billing@example.com",
    "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "COBADEFFXXX",
    "invoice_number_format": "INV-{year}-{seq:05d}",
    "credit_note_number_format": "CN-{year}-{seq:05d}",
    "default_currency": "EUR",
    "default_payment_terms_days": "14",
}


@pytest.fixture
def admin(client, auth, world):
    auth.login(world.admin.email)
    return client


def _written():
    db.session.expire_all()
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Seller, Tenant, BillingProfile, AuditLogEntry)
    )


def test_sellers_pages_need_a_platform_admin(client, auth, world):
    assert client.get("/admin/sellers").status_code == 302  # to the login page
    auth.login(world.a.owner.email)
    assert client.get("/admin/sellers").status_code == 404
    assert client.get("/admin/sellers/new").status_code == 404


def test_seller_list_new_and_create(admin, world):
    page = admin.get("/admin/sellers").get_data(as_text=True)
    assert world.a.tenant.seller.legal_name in page and 'aria-current="page"' in page
    fragment = admin.get("/admin/sellers?q=zzz", headers=HX).get_data(as_text=True)
    assert "No sellers match." in fragment and "<html" not in fragment
    form = admin.get("/admin/sellers/new").get_data(as_text=True)
    assert 'value="INV-{year}-{seq:05d}"' in form and 'name="iban"' in form

    created = admin.post("/admin/sellers", data=SELLER_FORM)
    assert created.status_code == 303
    seller = db.session.scalars(
        sa.select(Seller).where(Seller.legal_name == "Example Cloud GmbH")
    ).one()
    assert created.headers["Location"].endswith(f"/admin/sellers/{seller.public_id}")
    assert seller.iban == "DE89370400440532013000"
    assert "seller.create" in db.session.scalars(sa.select(AuditLogEntry.action)).all()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("iban", "DE89 3704 0044 0532 0130 01", "This is not a valid IBAN"),
        ("invoice_number_format", "INV-{seq}", "needs both {year} and {seq}"),
        ("default_currency", "XYZ", "Not an ISO 4217 currency code"),
        ("default_payment_terms_days", "999", "between 0 and 365"),
        ("country", "", "Choose a country."),
    ],
)
def test_seller_form_errors_are_inline_and_write_nothing(admin, world, field, value, message):
    before = _written()
    answer = admin.post("/admin/sellers", data={**SELLER_FORM, field: value})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert message in body and 'aria-invalid="true"' in body and f'id="{field}-error"' in body
    assert _written() == before


def test_seller_edit_and_logo(admin, world):
    seller = world.a.tenant.seller
    url = f"/admin/sellers/{seller.public_id}"
    assert admin.get(url).status_code == 200
    saved = admin.post(url, data={**SELLER_FORM, "legal_name": "Renamed AG"})
    assert saved.status_code == 303
    db.session.expire_all()
    assert db.session.get(Seller, seller.id).legal_name == "Renamed AG"

    upload = admin.post(
        f"{url}/logo",
        data={"logo": (io.BytesIO(MALICIOUS_SVG), "logo.svg", "image/svg+xml")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 303
    db.session.expire_all()
    stored = db.session.get(Seller, seller.id)
    assert stored.logo_mime == "image/svg+xml" and b"script" not in stored.logo
    page = admin.get(url).get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in page and "Remove logo" in page

    before = _written()
    refused = admin.post(
        f"{url}/logo",
        data={"logo": (io.BytesIO(b"GIF89a" + b"0" * 10), "logo.gif", "image/gif")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 200 and "Upload a PNG or SVG file." in refused.get_data(
        as_text=True
    )
    assert _written() == before
    # Encoded here in memory: the test client would spool a body this large to a file it
    # never closes.
    boundary, body = encode_multipart(
        {"logo": FileStorage(io.BytesIO(png() + b"\0" * 600_000), "big.png", "logo", "image/png")}
    )
    big = admin.post(
        f"{url}/logo", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert big.status_code == 200 and "at most 512 KB" in big.get_data(as_text=True)
    assert admin.post(f"{url}/logo", data={"remove": "yes"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Seller, seller.id).logo is None
    assert admin.get("/admin/sellers/not-a-uuid").status_code == 404


def _company_form(world, **changes):
    return {
        "name": "Nordlicht Software",
        "slug": "",
        "seller": str(world.a.tenant.seller.public_id),
        "currency": "",
        "language": "de",
        "billing_profile.company_name": "Nordlicht Software GmbH",
        "billing_profile.address_line1": "Hafenstraße 3",
        "billing_profile.postal_code": "20457",
        "billing_profile.city": "Hamburg",
        "billing_profile.country": "DE",
        "billing_profile.billing_email": "ap@nordlicht.example",
        "billing_profile.einvoice_format": "none",
        **changes,
    }


def test_new_company_on_the_list_page(admin, world):
    page = admin.get("/admin/").get_data(as_text=True)
    assert 'id="new-company"' in page and 'name="billing_profile.city"' in page
    created = admin.post("/admin/companies", data=_company_form(world))
    assert created.status_code == 303
    tenant = db.session.scalars(sa.select(Tenant).where(Tenant.slug == "nordlicht-software")).one()
    assert created.headers["Location"].endswith(f"/admin/companies/{tenant.public_id}")
    assert tenant.billing_profile.language == "de"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"slug": "taken-slug"}, "slug", "Another company already has this slug."),
        ({"slug": "Not a slug"}, "slug", "Use lower-case letters"),
        ({"seller": "00000000-0000-4000-8000-000000000000"}, "seller", "There is no such seller."),
        ({"currency": "EURO"}, "currency", "Not an ISO 4217 currency code"),
        ({"billing_profile.vat_id": "DE000"}, "billing_profile-vat_id", "not a valid VAT ID"),
    ],
)
def test_new_company_errors_are_inline_and_write_nothing(admin, world, changes, field, message):
    world.a.tenant.slug = "taken-slug"
    db.session.commit()
    before = _written()
    answer = admin.post("/admin/companies", data=_company_form(world, **changes))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert message in body and f'id="{field}-error"' in body
    assert '<details class="panel new-company" id="new-company" open>' in body
    assert _written() == before


def test_nul_bytes_in_forms_are_refused_and_write_nothing(admin, world):
    before = _written()
    assert admin.post("/admin/sellers", data={**SELLER_FORM, "city": "A\x00"}).status_code == 422
    assert (
        admin.post("/admin/companies", data=_company_form(world, name="N\x00")).status_code == 422
    )
    assert _written() == before


def test_edit_company(admin, world):
    tenant = world.a.tenant
    url = f"/admin/companies/{tenant.public_id}/edit"
    form = admin.get(url).get_data(as_text=True)
    assert f'value="{tenant.slug}"' in form
    saved = admin.post(
        url, data=_company_form(world, name="Alpha AG", slug="alpha-ag", currency="EUR")
    )
    assert saved.status_code == 303
    db.session.expire_all()
    assert (tenant.name, tenant.slug) == ("Alpha AG", "alpha-ag")
    refused = admin.post(url, data=_company_form(world, currency="USD"))  # invoiced in EUR
    assert refused.status_code == 200 and "cannot change" in refused.get_data(as_text=True)


def test_archive_with_confirmation_and_filter(admin, world):
    tenant = world.a.tenant
    confirm = admin.get(f"/admin/companies/{tenant.public_id}/archive").get_data(as_text=True)
    assert "Archive Alpha Industries?" in confirm and 'id="confirm-button"' in confirm
    done = admin.post(f"/admin/companies/{tenant.public_id}/archive")
    assert done.status_code == 303
    company = admin.get(f"/admin/companies/{tenant.public_id}").get_data(as_text=True)
    assert "Archived" in company and world.a.invoice.number in company  # history readable
    current = admin.get("/admin/").get_data(as_text=True)
    assert "Alpha Industries" not in current and "Bravo Logistics" in current
    archived = admin.get("/admin/?status=archived", headers=HX).get_data(as_text=True)
    assert "Alpha Industries" in archived and "Bravo Logistics" not in archived
    assert "Archived" in archived
    everything = admin.get("/admin/?status=all").get_data(as_text=True)
    assert "Alpha Industries" in everything and "Bravo Logistics" in everything
    again = admin.post(f"/admin/companies/{tenant.public_id}/archive", follow_redirects=True)
    assert "already archived" in again.get_data(as_text=True)
    edit = admin.get(f"/admin/companies/{tenant.public_id}/edit")
    assert edit.status_code == 303
