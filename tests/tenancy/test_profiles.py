"""Billing profiles: every validation rule, and saving without touching the seller's terms."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from portal.domain.tax import vat_id_is_valid
from portal.tenancy.models import BillingProfile, EInvoiceFormat
from portal.tenancy.profiles import (
    COUNTRY_CODES,
    MAX_CC_EMAILS,
    CountryName,
    Message,
    ProfileInput,
    ProfileInvalid,
    countries,
    get_billing_profile,
    split_emails,
    upsert_billing_profile,
    validate_profile,
)
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory

VALID = {
    "company_name": "Alpha Industries GmbH",
    "address_line1": "Hauptstraße 5",
    "postal_code": "20095",
    "city": "Hamburg",
    "country": "DE",
    "billing_email": "ap@alpha.example",
    "language": "en",
}


def check(**changes):
    """Validate VALID with ``changes``; returns (clean, errors)."""
    return validate_profile(
        ProfileInput(**{**VALID, **changes}), tenant=None, languages=["en", "de"]
    )


def errors_of(**changes) -> dict[str, str]:
    return check(**changes)[1]


# -- the whole input ------------------------------------------------------------------------


def test_minimal_valid_input_is_cleaned():
    clean, errors = check(
        company_name="  Alpha Industries GmbH ",
        address_line2="   ",
        region="",
        contact_name=None,
    )
    assert errors == {}
    assert clean["company_name"] == "Alpha Industries GmbH"
    assert clean["address_line2"] is None
    assert clean["region"] is None
    assert clean["contact_name"] is None
    assert clean["vat_id"] is None
    assert clean["tax_exempt"] is False
    assert clean["cc_emails"] == []
    assert clean["einvoice_format"] is EInvoiceFormat.NONE
    assert clean["language"] == "en"
    assert "currency" not in clean and "payment_terms_days" not in clean


def test_a_mapping_is_accepted_and_unknown_keys_are_ignored():
    clean, errors = validate_profile(
        {**VALID, "currency": "JPY", "payment_terms_days": 0, "vat_id": None},
        tenant=None,
        languages=["en"],
    )
    assert errors == {}
    assert "currency" not in clean and "payment_terms_days" not in clean


def test_everything_wrong_at_once_gives_one_message_per_field():
    errors = errors_of(
        company_name="",
        address_line1="",
        postal_code="",
        city="",
        country="",
        billing_email="",
        language="",
    )
    assert set(errors) == {
        "company_name",
        "address_line1",
        "postal_code",
        "city",
        "country",
        "billing_email",
        "language",
    }
    assert all(isinstance(message, str) and message.endswith(".") for message in errors.values())


# -- required and lengths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("company_name", "Enter the company name invoices are addressed to."),
        ("address_line1", "Enter the street and number."),
        ("postal_code", "Enter the postal code."),
        ("city", "Enter the city."),
        ("country", "Choose a country."),
        ("billing_email", "Enter the e-mail address invoices are sent to."),
    ],
)
@pytest.mark.parametrize("empty", ["", "   ", None])
def test_required_fields(name, message, empty):
    assert errors_of(**{name: empty}) == {name: message}


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("company_name", 200),
        ("address_line1", 200),
        ("address_line2", 200),
        ("postal_code", 20),
        ("city", 100),
        ("region", 100),
        ("contact_name", 200),
        ("phone", 40),
        ("purchase_order", 100),
        ("buyer_reference", 100),
        ("peppol_endpoint_id", 100),
    ],
)
def test_lengths_follow_the_columns(name, limit):
    extra = {"peppol_endpoint_scheme": "0088"} if name == "peppol_endpoint_id" else {}
    assert errors_of(**{name: "x" * limit}, **extra) == {}
    assert errors_of(**{name: "x" * (limit + 1)}, **extra) == {
        name: f"Use at most {limit} characters."
    }


def test_tax_exemption_reason_length():
    assert errors_of(tax_exempt=True, tax_exemption_reason="x" * 201) == {
        "tax_exemption_reason": "Use at most 200 characters."
    }


def test_phone_is_free_text():
    clean, errors = check(phone=" +49 (0)40 / 123-45 ext. 6 ")
    assert errors == {}
    assert clean["phone"] == "+49 (0)40 / 123-45 ext. 6"


# -- country --------------------------------------------------------------------------------


def test_country_is_upper_cased():
    clean, errors = check(country=" de ")
    assert errors == {}
    assert clean["country"] == "DE"


@pytest.mark.parametrize("code", ["XX", "EU", "ZZ", "EL", "DEU", "001", "Germany"])
def test_country_must_be_an_iso_code(code):
    errors = errors_of(country=code)
    assert list(errors) == ["country"]
    assert code.upper() in errors["country"]


def test_country_codes_come_from_babel_and_suit_the_tax_rules():
    assert {"DE", "FR", "GR", "CH", "US", "XK"} <= COUNTRY_CODES
    assert not {"EU", "UN", "ZZ", "EL", "001"} & COUNTRY_CODES
    for code in COUNTRY_CODES:
        vat_id_is_valid("DE136695976", code)  # raises ValueError for a code tax.py rejects


def test_countries_are_sorted_by_their_localized_name():
    german = countries("de")
    names = [name for _, name in german]
    assert ("DE", "Deutschland") in german
    assert names.index("Ägypten") < names.index("Albanien")  # Ä sorts as A
    assert names.index("Oman") < names.index("Österreich") < names.index("Pakistan")
    assert len(german) == len(COUNTRY_CODES)
    assert ("DE", "Germany") in countries("en")


# -- VAT ID ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vat_id", "country", "normalized"),
    [
        ("DE136695976", "DE", "DE136695976"),
        ("de 136 695 976", "DE", "DE136695976"),
        ("FR40303265045", "FR", "FR40303265045"),
        ("EL094259216", "GR", "EL094259216"),
        ("GR094259216", "GR", "EL094259216"),
        ("CHE-116.281.710 MWST", "CH", "CHE116281710MWST"),
    ],
)
def test_valid_vat_ids_are_normalized(vat_id, country, normalized):
    clean, errors = check(vat_id=vat_id, country=country)
    assert errors == {}
    assert clean["vat_id"] == normalized


def test_vat_id_with_a_bad_check_digit():
    assert errors_of(vat_id="DE136695977") == {"vat_id": "This is not a valid VAT ID for Germany."}


def test_vat_id_of_another_country():
    assert errors_of(vat_id="DE136695976", country="FR") == {
        "vat_id": "This is not a valid VAT ID for France."
    }


def test_vat_id_is_optional():
    clean, errors = check(vat_id="  ")
    assert errors == {}
    assert clean["vat_id"] is None


def test_vat_id_is_not_checked_against_an_invalid_country():
    assert list(errors_of(vat_id="DE136695976", country="XX")) == ["country"]


def test_vat_id_for_a_country_without_vat_ids():
    assert errors_of(vat_id="US123456789", country="US") == {
        "vat_id": "This is not a valid VAT ID for United States."
    }


# -- tax exemption --------------------------------------------------------------------------


def test_tax_exempt_requires_a_reason():
    assert list(errors_of(tax_exempt=True)) == ["tax_exemption_reason"]
    assert list(errors_of(tax_exempt="on", tax_exemption_reason=" ")) == ["tax_exemption_reason"]


def test_tax_exempt_with_a_reason():
    clean, errors = check(tax_exempt="on", tax_exemption_reason=" Charity (§ 4 Nr. 18 UStG) ")
    assert errors == {}
    assert clean["tax_exempt"] is True
    assert clean["tax_exemption_reason"] == "Charity (§ 4 Nr. 18 UStG)"


def test_a_reason_without_exemption_is_dropped():
    clean, errors = check(tax_exempt=False, tax_exemption_reason="x" * 300)
    assert errors == {}
    assert clean["tax_exemption_reason"] is None


# -- e-mail addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["ap", "ap@", "@alpha.example", "a p@alpha.example", "ap@@x.de"]
)
def test_billing_email_must_be_valid(address):
    assert errors_of(billing_email=address) == {
        "billing_email": "Enter a valid e-mail address, such as billing@example.com."
    }


def test_billing_email_domain_is_normalized():
    clean, errors = check(billing_email=" AP@Alpha.Example ")
    assert errors == {}
    assert clean["billing_email"] == "AP@alpha.example"


@pytest.mark.parametrize(
    "value",
    [
        "a@x.example, b@x.example\nc@x.example",
        "a@x.example;b@x.example\r\n\r\nc@x.example,",
        ["a@x.example", "b@x.example", "  c@x.example  ", ""],
        ["a@x.example, b@x.example", "c@x.example"],
    ],
)
def test_cc_emails_from_a_string_or_a_list(value):
    clean, errors = check(cc_emails=value)
    assert errors == {}
    assert clean["cc_emails"] == ["a@x.example", "b@x.example", "c@x.example"]


def test_split_emails():
    assert split_emails(None) == []
    assert split_emails("") == []
    assert split_emails(" a@x.example ,\n b@x.example ") == ["a@x.example", "b@x.example"]
    assert split_emails(42) == ["42"]  # whatever a JSON client sends, no crash


def test_cc_duplicates_are_removed():
    clean, errors = check(cc_emails="a@x.example\nA@X.example\nb@x.example\na@x.example")
    assert errors == {}
    assert clean["cc_emails"] == ["a@x.example", "b@x.example"]


def test_cc_message_names_the_bad_addresses():
    errors = errors_of(cc_emails="a@x.example, not-an-address, b@, c@x.example")
    assert errors == {"cc_emails": "Not a valid e-mail address: “not-an-address”, “b@”."}


def test_cc_must_not_repeat_the_billing_email():
    errors = errors_of(cc_emails="cfo@alpha.example\nAP@alpha.example")
    assert errors == {
        "cc_emails": "“AP@alpha.example” already receives invoices as the billing e-mail; "
        "remove it here."
    }


def test_at_most_ten_cc_addresses():
    ten = [f"cc{n}@x.example" for n in range(MAX_CC_EMAILS)]
    assert errors_of(cc_emails=ten) == {}
    assert errors_of(cc_emails=ten + ten) == {}  # duplicates do not count
    assert errors_of(cc_emails=[*ten, "one-more@x.example"]) == {
        "cc_emails": "Enter at most 10 addresses; there are 11."
    }


# -- e-invoices -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [fmt.value for fmt in EInvoiceFormat])
def test_every_einvoice_format_is_accepted(value):
    extra = {"buyer_reference": "991-33333TEST-33"} if value == "xrechnung" else {}
    clean, errors = check(einvoice_format=value, **extra)
    assert errors == {}
    assert clean["einvoice_format"] == EInvoiceFormat(value)


def test_empty_einvoice_format_means_none():
    assert check(einvoice_format="")[0]["einvoice_format"] is EInvoiceFormat.NONE


@pytest.mark.parametrize("value", ["pdf", "edifact", "UBL 2.1"])
def test_unknown_einvoice_format(value):
    assert errors_of(einvoice_format=value) == {
        "einvoice_format": "Choose one of the listed e-invoice formats."
    }


def test_xrechnung_requires_a_leitweg_id():
    assert errors_of(einvoice_format="xrechnung") == {
        "buyer_reference": "XRechnung needs your Leitweg-ID as the buyer reference."
    }


@pytest.mark.parametrize(
    "leitweg_id",
    ["04011000-1234512345-06", "991-33333TEST-33", "04011000-06", "12-ab-99", "123456789012-99"],
)
def test_valid_leitweg_ids(leitweg_id):
    clean, errors = check(einvoice_format="xrechnung", buyer_reference=f" {leitweg_id} ")
    assert errors == {}
    assert clean["buyer_reference"] == leitweg_id


@pytest.mark.parametrize(
    "leitweg_id",
    [
        "04011000-1234512345-6",  # one check digit
        "04011000-1234512345-061",  # three check digits
        "1-33333TEST-33",  # coarse address of one digit
        "1234567890123-33",  # coarse address of 13 digits
        "04011000_1234512345_06",
        "04011000-12345 12345-06",
        "04011000-" + "A" * 31 + "-06",  # fine address over 30 characters
        "PO-4711",
    ],
)
def test_invalid_leitweg_ids(leitweg_id):
    assert errors_of(einvoice_format="xrechnung", buyer_reference=leitweg_id) == {
        "buyer_reference": "This does not look like a Leitweg-ID, such as 04011000-1234512345-06."
    }


def test_buyer_reference_is_free_text_without_xrechnung():
    clean, errors = check(einvoice_format="ubl", buyer_reference="Cost centre 4711")
    assert errors == {}
    assert clean["buyer_reference"] == "Cost centre 4711"


# -- Peppol ---------------------------------------------------------------------------------


def test_peppol_id_and_scheme_together():
    clean, errors = check(peppol_endpoint_id="4000001000005", peppol_endpoint_scheme="0088")
    assert errors == {}
    assert (clean["peppol_endpoint_scheme"], clean["peppol_endpoint_id"]) == (
        "0088",
        "4000001000005",
    )
    clean, errors = check(peppol_endpoint_id=" ", peppol_endpoint_scheme="")
    assert errors == {}
    assert clean["peppol_endpoint_id"] is clean["peppol_endpoint_scheme"] is None


def test_peppol_id_without_scheme():
    assert errors_of(peppol_endpoint_id="4000001000005") == {
        "peppol_endpoint_scheme": "Enter the scheme of the Peppol ID as well, such as 0088 or 9930."
    }


def test_peppol_scheme_without_id():
    assert errors_of(peppol_endpoint_scheme="9930") == {
        "peppol_endpoint_id": "Enter the Peppol ID for this scheme, or clear the scheme."
    }


@pytest.mark.parametrize("scheme", ["88", "00880", "GLN", "0088 ", "99 30"])
def test_peppol_scheme_is_a_four_digit_eas_code(scheme):
    errors = errors_of(peppol_endpoint_id="DE136695976", peppol_endpoint_scheme=scheme)
    if scheme.strip() == "0088":
        assert errors == {}
    else:
        assert errors == {
            "peppol_endpoint_scheme": "The scheme is a 4-digit EAS code, such as 0088 or 9930."
        }


# -- language -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("de", "de"), (" DE ", "de"), ("en", "en")])
def test_language_of_the_app(value, expected):
    clean, errors = check(language=value)
    assert errors == {}
    assert clean["language"] == expected


@pytest.mark.parametrize("value", ["fr", "", None, "english"])
def test_other_languages_are_refused(value):
    assert errors_of(language=value) == {"language": "Choose the language of your invoices."}


# -- messages -------------------------------------------------------------------------------


def test_messages_are_english_strings_that_know_their_msgid():
    message = errors_of(vat_id="DE136695976", country="FR")["vat_id"]
    assert isinstance(message, Message)
    assert message.msgid == "This is not a valid VAT ID for %(country)s."
    assert message.params == {"country": CountryName("FR")}
    assert json.loads(json.dumps({"vat_id": message})) == {
        "vat_id": "This is not a valid VAT ID for France."
    }


# -- saving ---------------------------------------------------------------------------------


def _count(session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(BillingProfile))


def test_create_takes_currency_and_terms_from_tenant_and_seller(session):
    tenant = TenantFactory(currency="CHF", seller=SellerFactory(default_payment_terms_days=30))
    session.commit()
    profile = upsert_billing_profile(
        session,
        tenant,
        ProfileInput(
            **{**VALID, "country": "CH"},
            vat_id="CHE-116.281.710 MWST",
            cc_emails="cfo@alpha.example",
        ),
    )
    session.commit()
    session.expire_all()
    stored = get_billing_profile(session, tenant)
    assert stored is not None and stored.id == profile.id
    assert stored.tenant_id == tenant.id
    assert (stored.currency, stored.payment_terms_days) == ("CHF", 30)
    assert stored.company_name == "Alpha Industries GmbH"
    assert stored.vat_id == "CHE116281710MWST"
    assert stored.cc_emails == ["cfo@alpha.example"]
    assert stored.einvoice_format is EInvoiceFormat.NONE


def test_update_keeps_currency_and_terms(session):
    tenant = TenantFactory(currency="EUR", seller=SellerFactory(default_payment_terms_days=14))
    existing = BillingProfileFactory(tenant=tenant, currency="USD", payment_terms_days=45)
    session.commit()
    profile = upsert_billing_profile(
        session,
        tenant,
        {
            **VALID,
            "einvoice_format": "xrechnung",
            "buyer_reference": "04011000-1234512345-06",
            # Not the tenant's to change: ignored.
            "currency": "JPY",
            "payment_terms_days": 0,
        },
    )
    session.commit()
    session.expire_all()
    assert profile.id == existing.id
    assert _count(session) == 1
    stored = session.get(BillingProfile, existing.id)
    assert (stored.currency, stored.payment_terms_days) == ("USD", 45)
    assert stored.einvoice_format is EInvoiceFormat.XRECHNUNG
    assert stored.buyer_reference == "04011000-1234512345-06"
    assert stored.billing_email == "ap@alpha.example"


def test_update_clears_optional_fields(session):
    tenant = TenantFactory()
    existing = BillingProfileFactory(
        tenant=tenant, region="Hamburg", vat_id="DE136695976", cc_emails=["x@y.example"]
    )
    session.commit()
    upsert_billing_profile(session, tenant, ProfileInput(**VALID, region="", vat_id=""))
    session.commit()
    session.expire_all()
    stored = session.get(BillingProfile, existing.id)
    assert (stored.region, stored.vat_id, stored.cc_emails) == (None, None, [])


def test_nothing_is_written_when_invalid(session):
    tenant = TenantFactory()
    existing = BillingProfileFactory(tenant=tenant, company_name="Before Ltd")
    session.commit()
    with pytest.raises(ProfileInvalid) as raised:
        upsert_billing_profile(
            session,
            tenant,
            ProfileInput(**{**VALID, "company_name": "After Ltd", "vat_id": "DE136695977"}),
        )
    assert raised.value.errors == {"vat_id": "This is not a valid VAT ID for Germany."}
    assert "vat_id" in str(raised.value)
    assert not session.new and not session.dirty
    session.rollback()
    session.expire_all()
    assert session.get(BillingProfile, existing.id).company_name == "Before Ltd"


def test_nothing_is_created_when_invalid(session):
    tenant = TenantFactory()
    session.commit()
    with pytest.raises(ProfileInvalid) as raised:
        upsert_billing_profile(session, tenant, {"company_name": "Alpha"})
    assert set(raised.value.errors) == {
        "address_line1",
        "postal_code",
        "city",
        "country",
        "billing_email",
        "language",
    }
    session.commit()
    assert _count(session) == 0


def test_profiles_are_per_tenant(session):
    seller = SellerFactory()
    a, b = TenantFactory(seller=seller), TenantFactory(seller=seller)
    profile_b = BillingProfileFactory(tenant=b, company_name="Bravo Logistics")
    session.commit()
    profile_a = upsert_billing_profile(session, a, ProfileInput(**VALID))
    session.commit()
    session.expire_all()
    assert profile_a.id != profile_b.id
    assert _count(session) == 2
    assert get_billing_profile(session, b).company_name == "Bravo Logistics"
    assert get_billing_profile(session, a).company_name == "Alpha Industries GmbH"
