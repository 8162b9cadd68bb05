"""Bad input on pages: a NUL in a form field is refused (at the field on the sign-in and
billing-profile forms, with a 422 page elsewhere), a body over MAX_CONTENT_LENGTH is a plain
413, and nothing is written either way."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings
from portal.extensions import db
from portal.notifications.models import OutboxEmail
from portal.ops.models import AuditLogEntry
from portal.tenancy.models import ApiToken, BillingProfile
from portal.tenancy.profiles import ProfileInput, get_billing_profile, validate_profile
from portal.tenancy.services import make_reset_token

NUL_MESSAGE = "Remove the NUL character"
FORM = {
    "company_name": "Alpha Industries GmbH",
    "address_line1": "Hauptstraße 5",
    "postal_code": "20095",
    "city": "Hamburg",
    "country": "DE",
    "billing_email": "ap@alpha.example",
    "cc_emails": "cfo@alpha.example",
    "einvoice_format": "none",
    "language": "en",
}


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _profile(tenant) -> tuple[int, dict]:
    db.session.expire_all()
    profile = get_billing_profile(db.session, tenant)
    return _count(BillingProfile), dataclasses.asdict(ProfileInput.from_profile(profile))


def _signed_in(client) -> bool:
    return client.get("/").status_code == 200


# -- sign-in forms: the message at the field ---------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"email": "owner\u0000@alpha.example", "password": "correct horse battery"},
        {"email": None, "password": "correct horse battery\u0000"},
    ],
)
def test_login_refuses_nul_at_the_field(client, world, data):
    data = {**data, "email": data["email"] or world.a.owner.email}
    response = client.post("/login", data=data)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert NUL_MESSAGE in html and "field__error" in html
    assert not _signed_in(client)


def test_login_does_not_follow_a_next_with_control_characters(client, world):
    data = {"email": world.a.owner.email, "password": "correct horse battery"}
    response = client.post("/login", data={**data, "next": "/invoices\u0000x"})
    assert response.status_code == 303 and response.location == "/"


def test_forgot_password_refuses_nul_and_sends_nothing(client, world, mailbox):
    response = client.post("/password/forgot", data={"email": f"{world.a.owner.email}\u0000"})
    assert response.status_code == 200 and NUL_MESSAGE in response.get_data(as_text=True)
    assert _count(OutboxEmail) == 0 and mailbox.messages == []


def test_reset_password_refuses_nul_and_keeps_the_password(app, client, world, session):
    token = make_reset_token(world.a.owner, app.config["SECRET_KEY"])
    before = world.a.owner.password_hash
    new = "new password 123\u0000"
    response = client.post(f"/password/reset/{token}", data={"password": new, "confirm": new})
    assert response.status_code == 200 and NUL_MESSAGE in response.get_data(as_text=True)
    session.expire_all()
    assert world.a.owner.password_hash == before


def test_language_switch_ignores_a_next_with_control_characters(client):
    response = client.post("/language", data={"language": "de", "next": "/invoices\u0000x"})
    assert response.status_code == 303 and response.location == "/"


# -- billing profile: the message at the field -------------------------------------------------


@pytest.mark.parametrize("field", ["company_name", "city", "cc_emails", "country", "vat_id"])
def test_profile_form_refuses_nul_at_the_field(client, auth, world, field):
    auth.login(world.a.owner.email)
    before = _profile(world.a.tenant)
    response = client.post("/billing-profile", data={**FORM, field: "DE\u00001"})
    assert response.status_code == 200  # the form again, as htmx swaps it
    html = response.get_data(as_text=True)
    assert NUL_MESSAGE in html
    start = html.index(f'id="field-{field}"')
    end = html.find('id="field-', start + 1)
    assert NUL_MESSAGE in html[start : end if end != -1 else len(html)]  # at that field
    assert _profile(world.a.tenant) == before


def test_profile_live_check_names_the_field(client, auth, world):
    auth.login(world.a.owner.email)
    response = client.post(
        "/billing-profile/validate?field=company_name",
        data={**FORM, "company_name": "Alpha\u0000"},
    )
    assert response.status_code == 200
    assert NUL_MESSAGE in response.get_data(as_text=True)


def test_profile_service_refuses_unstorable_text_whoever_calls_it(world):
    data = {**FORM, "company_name": "Alpha\ud800", "cc_emails": ["a@b.example", "c\u0000@d.de"]}
    _, errors = validate_profile(data, tenant=world.a.tenant)
    assert set(errors) == {"company_name", "cc_emails"}
    assert all(NUL_MESSAGE in message for message in errors.values())


# -- everywhere else: a 422 page naming the field ----------------------------------------------


def test_admin_settings_form_with_nul_is_422_and_writes_nothing(client, auth, world):
    auth.login(world.admin.email)
    before = (_count(CompanyBillingSettings), _count(AuditLogEntry))
    response = client.post(
        f"/admin/companies/{world.a.tenant.public_id}/settings",
        data={"billing_day": "1", "payment_terms_days": "", "notes": "Key\u0000account"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert response.content_type.startswith("text/html") and "“notes”" in html
    assert (_count(CompanyBillingSettings), _count(AuditLogEntry)) == before


def test_token_form_with_nul_is_422_and_creates_no_token(client, auth, world):
    auth.login(world.a.owner.email)
    before = _count(ApiToken)
    response = client.post(
        "/settings/tokens", data={"name": "CI\u0000export", "access": "billing:read"}
    )
    assert response.status_code == 422 and "“name”" in response.get_data(as_text=True)
    assert _count(ApiToken) == before


def test_nul_in_a_query_string_is_422_not_a_server_error(client, auth, world):
    auth.login(world.admin.email)
    response = client.get("/admin/audit?actor=%00&action=%00")
    assert response.status_code == 422 and "“actor”" in response.get_data(as_text=True)


def test_invoice_search_still_drops_control_characters(client, auth, world):
    auth.login(world.a.owner.email)
    assert client.get("/invoices?number=%00INV").status_code == 200


# -- size ----------------------------------------------------------------------------------


def test_body_over_the_size_limit_is_a_plain_413(app, client, auth, world):
    auth.login(world.a.owner.email)
    before = _profile(world.a.tenant)
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post("/billing-profile", data={**FORM, "purchase_order": "x" * limit})
    assert response.status_code == 413
    assert response.content_type.startswith("text/html")
    assert "413" in response.get_data(as_text=True)
    assert _profile(world.a.tenant) == before
