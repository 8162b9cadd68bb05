"""Form of the billing-profile page.

The form renders the fields and carries the CSRF token; the rules live in
portal.tenancy.profiles, whose messages are put on the fields here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import wtforms
from babel import Locale
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)

from portal.tenancy.models import EInvoiceFormat
from portal.tenancy.profiles import CountryName, Message, ProfileInput, countries

#: A choice of a SelectField; wtforms 3.3 has it, its type stubs (3.2) do not yet.
SelectChoice = wtforms.SelectChoice  # type: ignore[attr-defined]

EINVOICE_LABELS = {
    EInvoiceFormat.NONE: _l("None (PDF only)"),
    EInvoiceFormat.UBL: _l("Peppol BIS Billing 3.0 (UBL)"),
    EInvoiceFormat.XRECHNUNG: _l("XRechnung (German public sector)"),
    EInvoiceFormat.CII: _l("UN/CEFACT CII (XML)"),
    EInvoiceFormat.FACTURX: _l("Factur-X (PDF with embedded XML)"),
    EInvoiceFormat.ZUGFERD: _l("ZUGFeRD (PDF with embedded XML)"),
}

#: Fields that must be filled in (announced as required; the service enforces it).
REQUIRED = frozenset(
    {"company_name", "address_line1", "postal_code", "city", "country", "billing_email"}
)


def language_name(code: str) -> str:
    """A language in its own language ("Deutsch"), as language pickers show them."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def translate(message: str, locale: Locale) -> str:
    """A service message in the reader's language (countries named in it, too)."""
    if not isinstance(message, Message):
        return message
    params = {
        name: locale.territories.get(value.code, value.code)
        if isinstance(value, CountryName)
        else value
        for name, value in message.params.items()
    }
    return gettext(message.msgid, **params)


class ProfileForm(FlaskForm):
    """Every editable field of a billing profile (currency and terms are the seller's)."""

    company_name = StringField(_l("Company name"), render_kw={"autocomplete": "organization"})
    address_line1 = StringField(
        _l("Street and number"), render_kw={"autocomplete": "address-line1"}
    )
    address_line2 = StringField(
        _l("Address line 2 (optional)"), render_kw={"autocomplete": "address-line2"}
    )
    postal_code = StringField(_l("Postal code"), render_kw={"autocomplete": "postal-code"})
    city = StringField(_l("City"), render_kw={"autocomplete": "address-level2"})
    region = StringField(
        _l("State or region (optional)"), render_kw={"autocomplete": "address-level1"}
    )
    country = SelectField(
        _l("Country"), validate_choice=False, render_kw={"autocomplete": "country"}
    )
    vat_id = StringField(
        _l("VAT ID (optional)"),
        description=_l("With the country prefix, such as DE123456789."),
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    tax_exempt = BooleanField(_l("We are exempt from VAT"))
    tax_exemption_reason = StringField(
        _l("Reason for the VAT exemption"),
        description=_l("Required when exempt; printed on every invoice."),
    )
    billing_email = EmailField(
        _l("Billing e-mail"),
        description=_l("Invoices and payment receipts are sent here."),
        render_kw={"autocomplete": "email"},
    )
    cc_emails = TextAreaField(
        _l("Copies to (optional)"),
        description=_l("Up to 10 addresses, one per line or separated by commas."),
        render_kw={"rows": 3, "spellcheck": "false"},
    )
    contact_name = StringField(_l("Contact person (optional)"), render_kw={"autocomplete": "name"})
    phone = TelField(_l("Phone (optional)"), render_kw={"autocomplete": "tel"})
    einvoice_format = SelectField(
        _l("E-invoice format"),
        choices=[SelectChoice(fmt.value, label) for fmt, label in EINVOICE_LABELS.items()],
        validate_choice=False,
        description=_l("The structured invoice your accounting software reads."),
    )
    language = SelectField(
        _l("Invoice language"),
        validate_choice=False,
        description=_l("For invoices and billing e-mails."),
        # "language" is taken by the page footer's language picker.
        id="profile-language",
    )
    buyer_reference = StringField(
        _l("Buyer reference (optional)"),
        description=_l("Required for XRechnung: your Leitweg-ID, such as 04011000-1234512345-06."),
        render_kw={"spellcheck": "false"},
    )
    purchase_order = StringField(
        _l("Purchase order number (optional)"),
        description=_l("Printed on invoices."),
    )
    peppol_endpoint_scheme = StringField(
        _l("Peppol scheme (optional)"),
        description=_l("A 4-digit EAS code, such as 0088 (GLN) or 9930 (German VAT ID)."),
        render_kw={"inputmode": "numeric", "spellcheck": "false"},
    )
    peppol_endpoint_id = StringField(
        _l("Peppol ID (optional)"),
        description=_l("Your address in the Peppol network, in that scheme."),
        render_kw={"spellcheck": "false"},
    )

    def __init__(self, *args, locale: Locale, languages: Iterable[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = [SelectChoice("", _l("Choose a country"))] + [
            SelectChoice(code, name) for code, name in countries(locale)
        ]
        self.language.choices = [SelectChoice(code, language_name(code)) for code in languages]
        self._locale = locale
        for name in ProfileInput.field_names():
            self._mark_required(name)

    def _mark_required(self, name: str) -> None:
        """Mark the field as required where it is. Its live check is delegated:

        a change of any field bubbles to the fields' container (templates/profile/
        _profile.html), which asks ``/billing-profile/validate?field=<name>``
        (static/js/live-check.js adds the name) and swaps the answer's cells out of band.
        """
        if name in REQUIRED:
            self[name].render_kw = {**(self[name].render_kw or {}), "required": True}

    def to_input(self) -> ProfileInput:
        """What was typed, for the service."""
        return ProfileInput(**{name: self[name].data for name in ProfileInput.field_names()})

    @classmethod
    def data_from(cls, profile_input: ProfileInput) -> dict:
        """Form data of a stored profile (the copies as one address per line)."""
        data = dataclasses.asdict(profile_input)
        data["cc_emails"] = "\n".join(profile_input.cc_emails or [])
        return data

    def show_errors(self, errors: Mapping[str, str], only: Iterable[str] | None = None) -> None:
        """Put the service's messages on their fields, translated."""
        names = ProfileInput.field_names() if only is None else tuple(only)
        for name in names:
            message = errors.get(name)
            self[name].errors = [translate(message, self._locale)] if message else []

    def has_value(self, name: str) -> bool:
        """Whether field ``name`` holds something."""
        data = self[name].data
        return bool(data.strip()) if isinstance(data, str) else bool(data)
