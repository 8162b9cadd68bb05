"""The company form of the admin console (new company on the list page, edit company)."""

from __future__ import annotations

from typing import Any

from flask_babel import get_locale

from portal.extensions import db
from portal.tenancy.companies import company_dict
from portal.tenancy.models import EInvoiceFormat, Tenant
from portal.tenancy.profiles import DEFAULT_LANGUAGES, ProfileInput, countries, get_billing_profile
from portal.tenancy.sellers import list_sellers
from portal.web.admin.common import translated
from portal.web.profile.forms import language_name, translate

#: Billing profile fields the admin form edits (the others keep their value).
PROFILE_FIELDS = (
    "company_name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "region",
    "country",
    "vat_id",
    "billing_email",
    "cc_emails",
    "contact_name",
    "buyer_reference",
    "purchase_order",
    "einvoice_format",
    "tax_exempt",
    "tax_exemption_reason",
)
TOP_FIELDS = ("name", "slug", "seller", "currency", "language")
#: Company list filters: value → whether archived companies are shown (None: all).
STATUS_FILTERS: dict[str, bool | None] = {"current": False, "archived": True, "all": None}


def company_form_data(form: Any) -> dict[str, Any]:
    """Service input from a posted company form (profile fields as ``billing_profile.*``)."""
    data: dict[str, Any] = {name: form.get(name, "") for name in TOP_FIELDS}
    profile = {name: form.get(f"billing_profile.{name}", "") for name in PROFILE_FIELDS}
    profile["tax_exempt"] = form.get("billing_profile.tax_exempt") == "on"
    data["billing_profile"] = profile
    return data


def form_values(data: dict[str, Any]) -> dict[str, Any]:
    """Flat form values (``billing_profile.city``…) from service input."""
    values = {name: data.get(name) for name in TOP_FIELDS}
    for name, value in (data.get("billing_profile") or {}).items():
        values[f"billing_profile.{name}"] = value
    return values


def blank_values() -> dict[str, Any]:
    sellers = list_sellers(db.session)
    first = sellers[0] if len(sellers) == 1 else None
    return {
        "seller": str(first.public_id) if first else "",
        "currency": first.default_currency if first else "",
        "language": "en",
        "billing_profile.einvoice_format": EInvoiceFormat.NONE.value,
    }


def company_values(tenant: Tenant) -> dict[str, Any]:
    """The stored company as form values."""
    values = company_dict(db.session, tenant)
    profile = get_billing_profile(db.session, tenant)
    if profile is not None:
        stored = vars(ProfileInput.from_profile(profile))
        for name in PROFILE_FIELDS:
            value = stored.get(name)
            values[f"billing_profile.{name}"] = (
                ", ".join(value) if isinstance(value, list) else value
            )
    values["language"] = values.get("language") or "en"
    return values


def translated_errors(errors: dict[str, str] | None) -> dict[str, str]:
    """Service messages in the viewer's language (profile messages name countries, too)."""
    locale = get_locale()
    return {
        name: translate(message, locale) if hasattr(message, "msgid") else translated(message)
        for name, message in (errors or {}).items()
    }


def form_context(values: dict[str, Any], errors: dict | None = None) -> dict[str, Any]:
    """What ``admin/_company_form.html`` needs besides its action."""
    locale = get_locale()
    return {
        "values": values,
        "errors": translated_errors(errors),
        "sellers": list_sellers(db.session),
        "countries": countries(locale or "en"),
        "languages": [(code, language_name(code)) for code in DEFAULT_LANGUAGES],
        "einvoice_formats": [f.value for f in EInvoiceFormat],
    }
