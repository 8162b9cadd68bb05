"""Billing profiles: validating what a tenant types, and saving it (web page and JSON API).

No Flask here: the page and the tenant API (``PUT /api/v1/billing/billing-profile``) call the
same functions, so they accept and refuse exactly the same input.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from babel import Locale
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from portal.db import scoped
from portal.domain.tax import COUNTRY_CODES, normalize_vat_id, vat_id_is_valid
from portal.tenancy.errors import TenancyError
from portal.tenancy.models import BillingProfile, EInvoiceFormat, Tenant

#: Languages invoices and e-mails can be written in, when the caller does not say.
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "de")

#: How many addresses may receive invoices in copy.
MAX_CC_EMAILS = 10


# --- Messages ------------------------------------------------------------------------------


def N_(message: str) -> str:  # noqa: N802 (the gettext convention for "mark, translate later")
    """Mark ``message`` for extraction by pybabel; it is translated where it is shown."""
    return message


@dataclass(frozen=True, slots=True)
class CountryName:
    """A country in a message: English by default, localized by whoever shows the message."""

    code: str

    def __str__(self) -> str:
        return country_name(self.code)


class Message(str):
    """An error message: the English text (so ``str`` and JSON show it) plus its parts.

    ``msgid`` and ``params`` let the web layer translate it with gettext; a
    :class:`CountryName` parameter lets it name the country in the reader's language.
    """

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> Message:
        text = msgid % {k: str(v) if isinstance(v, CountryName) else v for k, v in params.items()}
        message = super().__new__(cls, text)
        message.msgid = msgid
        message.params = params
        return message


class ProfileInvalid(TenancyError):
    """The billing profile input breaks one or more rules; nothing was written.

    :ivar errors: one human message per field name, e.g. ``{"vat_id": "This is not …"}``.
    """

    def __init__(self, errors: Mapping[str, str]):
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


# --- Countries -----------------------------------------------------------------------------


def country_name(code: str, locale: Locale | str = "en") -> str:
    """The name of country ``code`` in ``locale`` (the code itself when unknown)."""
    return Locale.parse(locale).territories.get(code, code)


def _collation_key(name: str) -> str:
    # Babel has no collation; dropping accents sorts "Österreich" with the O's and "Ägypten"
    # with the A's, as German (DIN 5007) and most Latin-script languages expect.
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def countries(locale: Locale | str = "en") -> list[tuple[str, str]]:
    """Every country as (code, name in ``locale``), sorted by the localized name."""
    names = Locale.parse(locale).territories
    pairs = [(code, names.get(code, code)) for code in COUNTRY_CODES]
    return sorted(pairs, key=lambda pair: (_collation_key(pair[1]), pair[1]))


# --- Input ---------------------------------------------------------------------------------


@dataclass
class ProfileInput:
    """The editable fields of a billing profile, as the user (or API client) typed them.

    Currency and payment terms are not here: the seller sets them, not the tenant.
    """

    company_name: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    vat_id: str | None = None
    tax_exempt: bool | str | None = False
    tax_exemption_reason: str | None = None
    billing_email: str | None = None
    #: A list of addresses, or one string with addresses separated by commas or new lines.
    cc_emails: list[str] | str | None = field(default_factory=list)
    contact_name: str | None = None
    phone: str | None = None
    buyer_reference: str | None = None
    purchase_order: str | None = None
    peppol_endpoint_id: str | None = None
    peppol_endpoint_scheme: str | None = None
    #: One of :class:`EInvoiceFormat`'s values; empty means "none".
    einvoice_format: str | None = EInvoiceFormat.NONE.value
    language: str | None = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ProfileInput:
        """Take the known fields from ``data`` (e.g. a JSON body); other keys are ignored."""
        names = cls.field_names()
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})

    @classmethod
    def from_profile(cls, profile: BillingProfile) -> ProfileInput:
        """The stored profile as input, e.g. to prefill a form."""
        values = {name: getattr(profile, name) for name in cls.field_names()}
        values["cc_emails"] = list(profile.cc_emails or [])
        values["einvoice_format"] = EInvoiceFormat(profile.einvoice_format).value
        values["tax_exempt"] = bool(profile.tax_exempt)
        return cls(**values)


# --- Rules ---------------------------------------------------------------------------------


def _column_length(name: str) -> int:
    """The declared size of BillingProfile's VARCHAR column ``name``."""
    column_type = BillingProfile.__table__.c[name].type
    assert isinstance(column_type, sa.String) and column_type.length is not None
    return column_type.length


#: Column sizes of the text fields (see BillingProfile).
MAX_LENGTHS: dict[str, int] = {
    name: _column_length(name)
    for name in (
        "company_name",
        "address_line1",
        "address_line2",
        "postal_code",
        "city",
        "region",
        "tax_exemption_reason",
        "billing_email",
        "contact_name",
        "phone",
        "buyer_reference",
        "purchase_order",
        "peppol_endpoint_id",
    )
}

#: What to say when a required field is empty.
_REQUIRED = {
    "company_name": N_("Enter the company name invoices are addressed to."),
    "address_line1": N_("Enter the street and number."),
    "postal_code": N_("Enter the postal code."),
    "city": N_("Enter the city."),
    "country": N_("Choose a country."),
    "billing_email": N_("Enter the e-mail address invoices are sent to."),
}

# Leitweg-ID (KoSIT, "Format­spezifikation Leitweg-ID"): a coarse address of 2 to 12 digits, an
# optional fine address of up to 30 letters and digits, and two check digits, joined by "-".
# Only the syntax is checked; the check digits (ISO 7064 Mod 97-10) are not.
LEITWEG_ID = re.compile(r"\d{2,12}(?:-[A-Za-z0-9]{1,30})?-\d{2}")

# Peppol Electronic Address Scheme (EAS) codes are four digits, e.g. 0088 (GLN), 0192
# (Norwegian organization number), 0204 (Leitweg-ID), 9930 (German VAT number).
EAS_CODE = re.compile(r"\d{4}")

_CC_SEPARATORS = re.compile(r"[,;\s]+")
#: Characters no text column stores: NUL (PostgreSQL refuses it) and lone surrogates (not
#: encodable as UTF-8). A field holding one is refused before any other rule sees it.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_TRUE = frozenset({"1", "true", "on", "yes", "y"})


def _text(value: Any) -> str | None:
    """A stripped string, or None when empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _unstorable(value: Any) -> bool:
    """Whether ``value`` (a string, or a list of them) holds a character no column stores."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        return any(_unstorable(item) for item in value)
    return False


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def split_emails(value: Iterable[str] | str | None) -> list[str]:
    """Addresses from a list or a comma-, semicolon- or newline-separated string."""
    if value is None:
        return []
    items = list(value) if isinstance(value, Iterable) and not isinstance(value, str) else [value]
    addresses: list[str] = []
    for item in items:
        addresses.extend(part for part in _CC_SEPARATORS.split(str(item)) if part)
    return addresses


def _email(address: str) -> str | None:
    """The normalized address (domain lower-cased), or None when it is not valid."""
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def validate_profile(
    data: ProfileInput | Mapping[str, Any],
    *,
    tenant: Tenant | None,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Check and clean billing profile input.

    :param data: what was typed, as a :class:`ProfileInput` or a mapping of its fields.
    :param tenant: whose profile it is (rules may depend on its seller; none do today).
    :param languages: the languages invoices can be written in (the app's ``LANGUAGES``).
    :return: ``(clean, errors)``: clean values by column name (trustworthy only when
        ``errors`` is empty) and one :class:`Message` (a ``str``) per invalid field.
    """
    if not isinstance(data, ProfileInput):
        data = ProfileInput.from_mapping(data)
    unstorable = [name for name in ProfileInput.field_names() if _unstorable(getattr(data, name))]
    if unstorable:  # the other rules see such a field as empty; its own message comes last
        data = dataclasses.replace(data, **{name: None for name in unstorable})
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}

    # Text fields: strip, empty → None, required, column length.
    for name, limit in MAX_LENGTHS.items():
        value = _text(getattr(data, name))
        clean[name] = value
        if value is None:
            if name in _REQUIRED:
                errors[name] = Message(_REQUIRED[name])
        elif len(value) > limit:
            errors[name] = Message(N_("Use at most %(max)d characters."), max=limit)

    country = (_text(data.country) or "").upper() or None
    clean["country"] = country
    if country is None:
        errors["country"] = Message(_REQUIRED["country"])
    elif country not in COUNTRY_CODES:
        errors["country"] = Message(
            N_("“%(code)s” is not a country code. Use ISO 3166-1 alpha-2, such as DE or FR."),
            code=country,
        )
        country = None

    _check_vat_id(data, country, clean, errors)

    clean["tax_exempt"] = _flag(data.tax_exempt)
    if not clean["tax_exempt"]:
        # BT-120 only means something on exempt invoices; keep no stale reason around.
        clean["tax_exemption_reason"] = None
        errors.pop("tax_exemption_reason", None)
    elif clean["tax_exemption_reason"] is None:
        errors["tax_exemption_reason"] = Message(
            N_("Say why you are exempt from VAT; the reason is printed on invoices.")
        )

    if clean["billing_email"] is not None and "billing_email" not in errors:
        normalized = _email(clean["billing_email"])
        if normalized is None:
            errors["billing_email"] = Message(
                N_("Enter a valid e-mail address, such as billing@example.com.")
            )
        else:
            clean["billing_email"] = normalized
    _check_cc_emails(data, clean, errors)

    _check_einvoice(data, clean, errors)
    _check_peppol(data, clean, errors)

    language = (_text(data.language) or "").lower() or None
    clean["language"] = language
    if language not in languages:
        errors["language"] = Message(N_("Choose the language of your invoices."))

    for name in unstorable:
        errors[name] = Message(
            N_("Remove the NUL character (or other character that cannot be stored) here.")
        )
    return clean, errors


def _check_vat_id(
    data: ProfileInput, country: str | None, clean: dict[str, Any], errors: dict[str, str]
) -> None:
    raw = _text(data.vat_id)
    vat_id = normalize_vat_id(raw) if raw is not None else None
    clean["vat_id"] = vat_id or None
    if not vat_id or country is None:
        return  # optional; and without a country there is nothing to check it against
    try:
        valid = vat_id_is_valid(vat_id, country)
    except ValueError:  # a country portal.domain.tax does not know
        valid = False
    if not valid or len(vat_id) > _column_length("vat_id"):
        errors["vat_id"] = Message(
            N_("This is not a valid VAT ID for %(country)s."), country=CountryName(country)
        )


def _check_cc_emails(data: ProfileInput, clean: dict[str, Any], errors: dict[str, str]) -> None:
    billing = (clean.get("billing_email") or "").casefold()
    seen: set[str] = set()
    addresses: list[str] = []
    invalid: list[str] = []
    same_as_billing: str | None = None
    for address in split_emails(data.cc_emails):
        normalized = _email(address)
        if normalized is None:
            invalid.append(address)
            continue
        key = normalized.casefold()
        if key in seen:
            continue  # duplicates are dropped silently
        seen.add(key)
        if billing and key == billing:
            same_as_billing = address
            continue
        addresses.append(normalized)
    clean["cc_emails"] = addresses
    if invalid:
        errors["cc_emails"] = Message(
            N_("Not a valid e-mail address: %(addresses)s."),
            addresses=", ".join(f"“{a}”" for a in invalid),
        )
    elif same_as_billing is not None:
        errors["cc_emails"] = Message(
            N_("“%(address)s” already receives invoices as the billing e-mail; remove it here."),
            address=same_as_billing,
        )
    elif len(addresses) > MAX_CC_EMAILS:
        errors["cc_emails"] = Message(
            N_("Enter at most %(max)d addresses; there are %(count)d."),
            max=MAX_CC_EMAILS,
            count=len(addresses),
        )


def _check_einvoice(data: ProfileInput, clean: dict[str, Any], errors: dict[str, str]) -> None:
    value = (_text(data.einvoice_format) or EInvoiceFormat.NONE.value).lower()
    try:
        clean["einvoice_format"] = EInvoiceFormat(value)
    except ValueError:
        clean["einvoice_format"] = None
        errors["einvoice_format"] = Message(N_("Choose one of the listed e-invoice formats."))
        return
    if clean["einvoice_format"] != EInvoiceFormat.XRECHNUNG or "buyer_reference" in errors:
        return
    reference = clean["buyer_reference"]
    if reference is None:
        errors["buyer_reference"] = Message(
            N_("XRechnung needs your Leitweg-ID as the buyer reference.")
        )
    elif not LEITWEG_ID.fullmatch(reference):
        errors["buyer_reference"] = Message(
            N_("This does not look like a Leitweg-ID, such as 04011000-1234512345-06.")
        )


def _check_peppol(data: ProfileInput, clean: dict[str, Any], errors: dict[str, str]) -> None:
    scheme = _text(data.peppol_endpoint_scheme)
    clean["peppol_endpoint_scheme"] = scheme
    endpoint = clean["peppol_endpoint_id"]
    if scheme is not None and not EAS_CODE.fullmatch(scheme):
        errors["peppol_endpoint_scheme"] = Message(
            N_("The scheme is a 4-digit EAS code, such as 0088 or 9930.")
        )
    elif endpoint is not None and scheme is None:
        errors["peppol_endpoint_scheme"] = Message(
            N_("Enter the scheme of the Peppol ID as well, such as 0088 or 9930.")
        )
    if scheme is not None and endpoint is None and "peppol_endpoint_id" not in errors:
        errors["peppol_endpoint_id"] = Message(
            N_("Enter the Peppol ID for this scheme, or clear the scheme.")
        )


# --- Writing -------------------------------------------------------------------------------


def get_billing_profile(session: Session, tenant: Tenant) -> BillingProfile | None:
    """The tenant's billing profile, or None when it has none yet."""
    return session.scalars(scoped(BillingProfile, tenant)).one_or_none()


def upsert_billing_profile(
    session: Session,
    tenant: Tenant,
    data: ProfileInput | Mapping[str, Any],
    *,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
) -> BillingProfile:
    """Create or update the tenant's billing profile; flushes, the caller commits.

    Currency and payment terms are the seller's to set: a new profile takes the tenant's
    currency and the seller's default payment terms, an existing one keeps its own.

    :raise ProfileInvalid: with one message per invalid field; nothing is written then.
    """
    clean, errors = validate_profile(data, tenant=tenant, languages=languages)
    if errors:
        raise ProfileInvalid(errors)
    profile = get_billing_profile(session, tenant)
    if profile is None:
        profile = BillingProfile(
            tenant=tenant,
            currency=tenant.currency,
            # The column allows 0 to 365 days; the seller's default is only known to be >= 0.
            payment_terms_days=min(tenant.seller.default_payment_terms_days, 365),
        )
        session.add(profile)
    for name, value in clean.items():
        setattr(profile, name, value)
    session.flush()
    return profile
