"""The billing-profile page: form and read-only view, saving, live field checks, isolation."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.tenancy.models import BillingProfile, EInvoiceFormat, User
from portal.tenancy.roles import Role
from tests.factories.tenancy import MembershipFactory, SellerFactory, TenantFactory, UserFactory

URL = "/billing-profile"
HX = {"HX-Request": "true"}


def form_data(**changes) -> dict:
    """A complete, valid form submission; ``None`` leaves a field out."""
    data = {
        "company_name": "Alpha Industries GmbH",
        "address_line1": "Hauptstraße 5",
        "address_line2": "3. OG",
        "postal_code": "20095",
        "city": "Hamburg",
        "region": "",
        "country": "DE",
        "vat_id": "DE 136 695 976",
        "tax_exemption_reason": "",
        "billing_email": "ap@alpha.example",
        "cc_emails": "cfo@alpha.example\ncontroller@alpha.example, cfo@alpha.example",
        "contact_name": "Ada Lovelace",
        "phone": "+49 40 123456",
        "buyer_reference": "",
        "purchase_order": "PO-2026-17",
        "peppol_endpoint_id": "",
        "peppol_endpoint_scheme": "",
        "einvoice_format": "ubl",
        "language": "de",
    }
    data.update(changes)
    return {name: value for name, value in data.items() if value is not None}


def profile_of(session, tenant) -> BillingProfile | None:
    session.expire_all()
    return session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == tenant.id)
    ).one_or_none()


def text(response) -> str:
    return response.get_data(as_text=True)


def controls(html: str) -> list[str]:
    return re.findall(r"<(input|select|textarea|button)\b", html)


# -- showing --------------------------------------------------------------------------------


def test_full_page_shows_the_prefilled_form(client, auth, world):
    auth.login(world.a.owner.email)
    response = client.get(URL)
    assert response.status_code == 200
    html = text(response)
    assert "<html" in html
    assert "<h1>Billing profile</h1>" in html
    assert 'href="/static/css/portal.css"' in html  # one stylesheet for every page
    assert 'action="/billing-profile"' in html and 'method="post"' in html
    assert 'value="Alpha Industries"' in html
    profile = world.a.tenant.billing_profile
    assert f'value="{profile.billing_email}"' in html
    assert '<option selected value="DE">Germany</option>' in html
    assert '<option selected value="none">None (PDF only)</option>' in html
    assert "Invoices are in EUR and due 14 days after issue" in html
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_gets_only_the_fragment(client, auth, world):
    auth.login(world.a.owner.email)
    response = client.get(URL, headers=HX)
    html = text(response)
    assert response.status_code == 200
    assert "<html" not in html and "<h1>" not in html
    assert 'id="field-company_name"' in html
    assert "HX-Request" in response.headers["Vary"]


def test_fields_are_labelled_and_check_themselves_on_change(client, auth, world):
    auth.login(world.a.owner.email)
    html = text(client.get(URL, headers=HX))
    # One delegated check for every field: the container posts the form on any change
    # (live-check.js names the field) and the answer's cells are swapped out of band.
    fields = re.search(r"<div class=\"profile-form__fields\"[^>]*>", html).group(0)
    assert "data-live-check" in fields
    assert 'hx-post="/billing-profile/validate"' in fields
    assert 'hx-trigger="change"' in fields
    assert 'hx-swap="none"' in fields
    assert 'hx-sync="closest form:queue all"' in fields
    vat = re.search(r"<input[^>]*\bid=\"vat_id\"[^>]*>", html).group(0)
    assert "hx-" not in vat  # a field is never the element that a check's answer replaces
    assert 'aria-describedby="vat_id-hint"' in vat
    assert '<div class="profile-form__cell" id="field-vat_id">' in html
    assert '<label class="field__label" for="vat_id">' in html
    assert re.search(r'<textarea[^>]*name="cc_emails"', html)
    assert re.search(r'<select[^>]*name="einvoice_format"', html)
    assert re.search(r'<input[^>]*name="company_name"[^>]*required', html)
    # Every editable field is there, and "language" does not clash with the footer's picker.
    for name in ("company_name", "tax_exempt", "peppol_endpoint_scheme", "language"):
        assert f'name="{name}"' in html
    assert 'id="profile-language"' in html


@pytest.mark.parametrize("role", [Role.OWNER, Role.BILLING_ADMIN])
def test_managers_get_the_form(client, auth, world, role):
    auth.login(world.a.user(role).email)
    html = text(client.get(URL, headers=HX))
    assert "Save billing profile" in html
    assert "<form" in html


def test_viewer_sees_the_same_data_read_only(client, auth, world, session):
    profile = world.a.tenant.billing_profile
    profile.vat_id = "DE136695976"
    profile.cc_emails = ["cfo@alpha.example"]
    profile.einvoice_format = EInvoiceFormat.XRECHNUNG
    profile.buyer_reference = "04011000-1234512345-06"
    session.commit()
    auth.login(world.a.viewer.email)
    response = client.get(URL, headers=HX)
    assert response.status_code == 200
    html = text(response)
    assert controls(html) == []
    assert "<form" not in html
    for value in (
        "Alpha Industries",
        "Hauptstraße 5",
        "20095 Hamburg",
        "Germany",
        "DE136695976",
        profile.billing_email,
        "cfo@alpha.example",
        "XRechnung (German public sector)",
        "04011000-1234512345-06",
        "English",
    ):
        assert value in html
    assert "Only owners and billing admins can change the billing profile." in html
    full = text(client.get(URL))
    assert "Save billing profile" not in full


def test_viewer_cannot_save_or_check(client, auth, world, session):
    before = profile_of(session, world.a.tenant).company_name
    auth.login(world.a.viewer.email)
    assert client.post(URL, data=form_data()).status_code == 403
    assert client.post(f"{URL}/validate?field=vat_id", data=form_data()).status_code == 403
    assert profile_of(session, world.a.tenant).company_name == before


def test_login_required(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/login" in response.location


# -- saving ---------------------------------------------------------------------------------


def test_invalid_post_shows_inline_errors_and_writes_nothing(client, auth, world, session):
    before = profile_of(session, world.a.tenant)
    snapshot = (before.company_name, before.billing_email, before.vat_id, before.updated_at)
    auth.login(world.a.owner.email)
    response = client.post(
        URL,
        data=form_data(
            company_name="Changed GmbH",
            vat_id="DE136695977",
            billing_email="not-an-address",
            cc_emails="ok@alpha.example, broken@, <b>@x",
        ),
    )
    assert response.status_code == 200
    html = text(response)
    assert "<html" in html  # no JavaScript: the whole page again
    assert "<title>Error: Billing profile" in html
    assert (
        '<p class="field__error" id="vat_id-error">This is not a valid VAT ID for Germany.</p>'
        in html
    )
    vat = re.search(r"<input[^>]*\bid=\"vat_id\"[^>]*>", html).group(0)
    assert 'aria-describedby="vat_id-hint vat_id-error"' in vat
    assert 'aria-invalid="true"' in vat
    assert 'value="DE136695977"' in vat  # what was typed stays
    assert 'id="billing_email-error"' in html
    assert "Not a valid e-mail address: “broken@”, “&lt;b&gt;@x”." in html
    assert "3 fields need your attention" in html
    assert '<a href="#vat_id">' in html
    assert 'value="Changed GmbH"' in html
    after = profile_of(session, world.a.tenant)
    assert (after.company_name, after.billing_email, after.vat_id, after.updated_at) == snapshot


def test_invalid_htmx_post_answers_the_fragment_with_200(client, auth, world):
    auth.login(world.a.owner.email)
    response = client.post(URL, data=form_data(city=""), headers=HX)
    assert response.status_code == 200
    html = text(response)
    assert "<html" not in html
    assert '<p class="field__error" id="city-error">Enter the city.</p>' in html
    assert "1 field needs your attention" in html


def test_valid_post_saves_and_redirects(client, auth, world, session):
    auth.login(world.a.owner.email)
    response = client.post(URL, data=form_data())
    assert response.status_code == 303
    assert response.location == URL
    profile = profile_of(session, world.a.tenant)
    assert profile.company_name == "Alpha Industries GmbH"
    assert profile.address_line2 == "3. OG"
    assert profile.region is None
    assert profile.vat_id == "DE136695976"
    assert profile.cc_emails == ["cfo@alpha.example", "controller@alpha.example"]
    assert profile.einvoice_format is EInvoiceFormat.UBL
    assert profile.language == "de"
    assert profile.tax_exempt is False
    assert (profile.currency, profile.payment_terms_days) == ("EUR", 14)
    page = text(client.get(URL))
    assert "Billing profile saved." in page
    assert "cfo@alpha.example\ncontroller@alpha.example</textarea>" in page
    assert 'value="DE136695976"' in page


def test_htmx_save_shows_the_message_in_the_fragment(client, auth, world):
    auth.login(world.a.owner.email)
    response = client.post(URL, data=form_data(), headers=HX)
    assert response.status_code == 303
    fragment = text(client.get(URL, headers=HX))
    assert "<html" not in fragment
    assert '<p class="flash flash--success" role="status">Billing profile saved.</p>' in fragment
    # Shown once.
    assert "Billing profile saved." not in text(client.get(URL, headers=HX))


def test_tax_exemption_and_xrechnung(client, auth, world, session):
    auth.login(world.a.owner.email)
    response = client.post(
        URL,
        data=form_data(
            tax_exempt="y",
            tax_exemption_reason="Charity",
            einvoice_format="xrechnung",
            buyer_reference="991-33333TEST-33",
            peppol_endpoint_scheme="0204",
            peppol_endpoint_id="991-33333TEST-33",
        ),
    )
    assert response.status_code == 303
    profile = profile_of(session, world.a.tenant)
    assert profile.tax_exempt is True
    assert profile.tax_exemption_reason == "Charity"
    assert profile.einvoice_format is EInvoiceFormat.XRECHNUNG
    assert (profile.peppol_endpoint_scheme, profile.peppol_endpoint_id) == (
        "0204",
        "991-33333TEST-33",
    )
    html = text(client.get(URL, headers=HX))
    assert re.search(r'<input[^>]*checked[^>]*name="tax_exempt"', html) or re.search(
        r'<input[^>]*name="tax_exempt"[^>]*checked', html
    )


def test_first_profile_is_created_with_the_sellers_terms(client, auth, session):
    seller = SellerFactory(default_payment_terms_days=30)
    tenant = TenantFactory(seller=seller, name="Delta Labs", currency="CHF")
    owner = MembershipFactory(tenant=tenant, role=Role.OWNER, user=UserFactory()).user
    session.commit()
    auth.login(owner.email)
    page = text(client.get(URL))
    assert "No billing profile yet" in page
    assert "Invoices are in CHF and due 30 days after issue" in page
    assert re.search(
        r"<select[^>]*id=\"country\"[^>]*><option value=\"\">Choose a country</option>", page
    )
    response = client.post(URL, data=form_data(country="CH", vat_id="CHE-116.281.710 MWST"))
    assert response.status_code == 303
    profile = profile_of(session, tenant)
    assert (profile.currency, profile.payment_terms_days) == ("CHF", 30)
    assert profile.vat_id == "CHE116281710MWST"
    assert "No billing profile yet" not in text(client.get(URL))


def test_viewer_without_profile_sees_an_explanation(client, auth, session):
    tenant = TenantFactory(name="Delta Labs")
    viewer = MembershipFactory(tenant=tenant, role=Role.VIEWER, user=UserFactory()).user
    session.commit()
    auth.login(viewer.email)
    html = text(client.get(URL, headers=HX))
    assert "No billing profile yet." in html
    assert controls(html) == []


# -- checking one field ---------------------------------------------------------------------


def test_validate_returns_the_field_with_its_error(client, auth, world):
    auth.login(world.a.owner.email)
    response = client.post(
        f"{URL}/validate?field=vat_id", data=form_data(vat_id="DE136695977"), headers=HX
    )
    assert response.status_code == 200
    html = text(response).strip()
    assert html.startswith('<div class="profile-form__cell" id="field-vat_id" hx-swap-oob="true">')
    assert html.count('class="profile-form__cell') == 1  # only the asked field
    assert (
        '<p class="field__error" id="vat_id-error">This is not a valid VAT ID for Germany.</p>'
        in html
    )
    assert 'aria-describedby="vat_id-hint vat_id-error"' in html
    assert "<html" not in html


def test_validate_returns_the_field_without_error(client, auth, world):
    auth.login(world.a.owner.email)
    # Other fields are wrong, but only the asked one is shown.
    response = client.post(
        f"{URL}/validate?field=vat_id", data=form_data(city="", billing_email="x"), headers=HX
    )
    assert response.status_code == 200
    html = text(response)
    assert 'id="field-vat_id"' in html
    assert "field__error" not in html and "field--invalid" not in html
    assert 'value="DE 136 695 976"' in html  # as typed


def test_changing_the_country_checks_the_vat_id_again(client, auth, world):
    auth.login(world.a.owner.email)
    response = client.post(
        f"{URL}/validate?field=country", data=form_data(country="FR"), headers=HX
    )
    html = text(response)
    assert 'id="field-country"' in html
    assert '<div class="profile-form__cell" id="field-vat_id" hx-swap-oob="true">' in html
    assert "This is not a valid VAT ID for France." in html
    # An empty VAT ID is left alone (the user may be typing in it).
    html = text(
        client.post(f"{URL}/validate?field=country", data=form_data(country="FR", vat_id=""))
    )
    assert "field-vat_id" not in html


def test_validate_rejects_unknown_fields(client, auth, world):
    auth.login(world.a.owner.email)
    assert client.post(f"{URL}/validate?field=currency", data=form_data()).status_code == 400
    assert client.post(f"{URL}/validate", data=form_data()).status_code == 400


def test_validate_writes_nothing(client, auth, world, session):
    before = profile_of(session, world.a.tenant).company_name
    auth.login(world.a.owner.email)
    client.post(f"{URL}/validate?field=company_name", data=form_data(company_name="New"))
    assert profile_of(session, world.a.tenant).company_name == before


# -- language -------------------------------------------------------------------------------


def test_country_select_in_the_users_language(client, auth, world, session):
    user = session.get(User, world.a.owner.id)
    user.locale = "de"
    session.commit()
    auth.login(user.email)
    html = text(client.get(URL))
    assert '<html lang="de">' in html
    select = re.search(r'<select[^>]*id="country".*?</select>', html, re.S).group(0)
    names = re.findall(r"<option[^>]*>([^<]*)</option>", select)
    assert '<option selected value="DE">Deutschland</option>' in select
    assert "Germany" not in select
    assert names.index("Ägypten") < names.index("Albanien") < names.index("Österreich")
    assert names.index("Oman") < names.index("Österreich") < names.index("Pakistan")
    assert '<option value="de">Deutsch</option>' in html


def test_error_names_the_country_in_the_users_language(client, auth, world, session):
    user = session.get(User, world.a.owner.id)
    user.locale = "de"
    session.commit()
    auth.login(user.email)
    html = text(
        client.post(f"{URL}/validate?field=vat_id", data=form_data(country="FR"), headers=HX)
    )
    error = re.search(r'<p class="field__error" id="vat_id-error">([^<]*)</p>', html).group(1)
    assert "Frankreich" in error and "France" not in error


# -- isolation ------------------------------------------------------------------------------


def test_another_tenants_profile_is_never_shown_or_changed(client, auth, world, session):
    profile_b = profile_of(session, world.b.tenant)
    profile_b.vat_id = "FR40303265045"
    profile_b.country = "FR"
    session.commit()
    b_before = (profile_b.company_name, profile_b.billing_email, profile_b.updated_at)
    for role in (Role.OWNER, Role.VIEWER):
        auth.login(world.a.user(role).email)
        for headers in ({}, HX):
            html = text(client.get(URL, headers=headers))
            assert world.b.tenant.name not in html
            assert profile_b.billing_email not in html
            assert "FR40303265045" not in html
        auth.logout()
    auth.login(world.a.owner.email)
    assert client.post(URL, data=form_data(company_name="Alpha only")).status_code == 303
    assert profile_of(session, world.a.tenant).company_name == "Alpha only"
    b = profile_of(session, world.b.tenant)
    assert (b.company_name, b.billing_email, b.updated_at) == b_before
