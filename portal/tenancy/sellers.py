"""Sellers, the operator's own legal entities: create, change and give them a logo (audited).

A seller's details reach an invoice when it is finalized (``invoices/issuing.py`` snapshots
them), so a change here affects only invoices finalized afterwards. The admin pages and the
console API call these functions, so they accept and refuse the same input.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban

from portal.db import lock, parse_public_id, utcnow
from portal.domain.money import is_known_currency
from portal.domain.tax import COUNTRY_CODES, normalize_vat_id, vat_id_is_valid
from portal.invoices.models import DocumentSequence, Invoice
from portal.invoices.states import DocumentType
from portal.ops.audit import N_, Actor, record_audit
from portal.tenancy.errors import TenancyError
from portal.tenancy.logos import LogoRejected, clean_logo
from portal.tenancy.models import Seller, Tenant


class SellerInvalid(TenancyError):
    """Seller input that breaks one or more rules; nothing was written.

    :ivar errors: field name → English message (pages translate it).
    """

    def __init__(self, errors: Mapping[str, str]):
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


#: Editable text fields and their longest value (the column lengths).
TEXT_FIELDS: dict[str, int] = {
    "legal_name": 200,
    "trading_name": 200,
    "address_line1": 200,
    "address_line2": 200,
    "postal_code": 20,
    "city": 100,
    "region": 100,
    "tax_number": 40,
    "registration": 200,
    "phone": 40,
    "website": 200,
    "bank_name": 100,
    "invoice_footer": 2000,
    "email_sender_name": 100,
}
#: Every editable field (the logo has its own function).
SELLER_FIELDS: tuple[str, ...] = (
    *TEXT_FIELDS,
    "country",
    "vat_id",
    "email",
    "iban",
    "bic",
    "invoice_number_format",
    "credit_note_number_format",
    "default_currency",
    "default_payment_terms_days",
)
_REQUIRED = {
    "legal_name": N_("Enter the registered legal name."),
    "address_line1": N_("Enter the street and number."),
    "postal_code": N_("Enter the postal code."),
    "city": N_("Enter the city."),
    "country": N_("Choose a country."),
    "email": N_("Enter the contact e-mail printed on invoices."),
    "invoice_number_format": N_("Enter the invoice number format."),
    "credit_note_number_format": N_("Enter the credit note number format."),
    "default_currency": N_("Enter the default currency."),
    "default_payment_terms_days": N_("Enter the payment terms in days."),
}
DEFAULTS: dict[str, Any] = {
    "invoice_number_format": "INV-{year}-{seq:05d}",
    "credit_note_number_format": "CN-{year}-{seq:05d}",
    "default_currency": "EUR",
    "default_payment_terms_days": 14,
}
#: Longest document number (the ``number`` columns of invoices and credit notes).
NUMBER_MAX = 40
#: Format specs a number placeholder may carry: width with optional zero padding, "d".
_SPEC = re.compile(r"(0?[1-9][0-9]?)?d?")
_NUMBER_TEXT = re.compile(r"[A-Za-z0-9._/#-]+")
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_WEBSITE = re.compile(r"https?://[^\s/$.?#][^\s]*", re.IGNORECASE)
#: Numbers checked against existing ones when a format changes.
_COLLISION_PROBE = 200


def _text(value: Any) -> str | None:
    """A stripped string, or None when empty (callers have refused non-strings)."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def number_format_problem(pattern: str) -> str | None:
    """Why numbering cannot render ``pattern`` (``portal/invoices/numbering.py`` calls
    ``pattern.format(year=…, seq=…)``), or None when it can.

    A format needs ``{seq}`` and ``{year}`` (numbers restart each year, so without the year
    they would repeat), may pad the sequence (``{seq:05d}``), and renders to at most 40
    letters, digits and ``. _ / # -``.
    """
    fields: set[str] = set()
    try:
        for _literal, name, spec, conversion in string.Formatter().parse(pattern):
            if name is None:
                continue
            if name not in ("year", "seq") or conversion is not None:
                return N_(
                    "Use only the placeholders {year} and {seq}, such as INV-{year}-{seq:05d}."
                )
            if not _SPEC.fullmatch(spec or ""):
                return N_("A placeholder may only be padded, such as {seq:05d}.")
            fields.add(name)
    except ValueError:
        return N_("Unbalanced braces: write placeholders as {year} and {seq}.")
    if fields != {"year", "seq"}:
        return N_("The format needs both {year} and {seq}, such as INV-{year}-{seq:05d}.")
    try:
        samples = [pattern.format(year=2026, seq=seq) for seq in (1, 2, 9_999_999)]
    except (ValueError, KeyError, IndexError, TypeError):
        return N_("Use only the placeholders {year} and {seq}, such as INV-{year}-{seq:05d}.")
    if any(not _NUMBER_TEXT.fullmatch(sample) for sample in samples):
        return N_("Numbers may hold only letters, digits and . _ / # -, no spaces.")
    if any(len(sample) > NUMBER_MAX for sample in samples):
        return N_("Numbers this format makes would be longer than 40 characters.")
    return None


def _check_country(clean: dict, errors: dict, value: Any) -> None:
    country = (_text(value) or "").upper() or None
    clean["country"] = country
    if country is None:
        errors["country"] = _REQUIRED["country"]
    elif country not in COUNTRY_CODES:
        errors["country"] = N_("Not a country code: use ISO 3166-1 alpha-2, such as DE or FR.")


def _check_vat_id(clean: dict, errors: dict, value: Any) -> None:
    raw = _text(value)
    vat_id = normalize_vat_id(raw) if raw else None
    clean["vat_id"] = vat_id or None
    country = clean.get("country") if "country" not in errors else None
    if not vat_id or country is None:
        return
    try:
        valid = vat_id_is_valid(vat_id, country) and len(vat_id) <= 20
    except ValueError:
        valid = False
    if not valid:
        errors["vat_id"] = N_("This is not a valid VAT ID of the seller's country.")


def _check_bank(clean: dict, errors: dict, iban: Any, bic: Any) -> None:
    iban_text = _text(iban)
    clean["iban"] = stdnum_iban.compact(iban_text) if iban_text else None
    if clean["iban"] and not stdnum_iban.is_valid(clean["iban"]):
        errors["iban"] = N_("This is not a valid IBAN (its check digits do not match).")
    bic_text = _text(bic)
    clean["bic"] = stdnum_bic.compact(bic_text) if bic_text else None
    if clean["bic"] and not stdnum_bic.is_valid(clean["bic"]):
        errors["bic"] = N_("This is not a valid BIC, such as COBADEFFXXX.")


def _check_terms(clean: dict, errors: dict, value: Any) -> None:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 4:
        value = int(value.strip())
    if value is None or (isinstance(value, str) and not value.strip()):
        errors["default_payment_terms_days"] = _REQUIRED["default_payment_terms_days"]
    elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 365:
        errors["default_payment_terms_days"] = N_("Enter between 0 and 365 days.")
    else:
        clean["default_payment_terms_days"] = value


def validate_seller(data: Mapping[str, Any], *, current: Seller | None = None) -> dict[str, Any]:
    """Check and clean seller input.

    :param data: field → value; with ``current``, absent fields keep their current value
        (a partial change), without it absent fields take the defaults.
    :return: every field of :data:`SELLER_FIELDS`, cleaned.
    :raise SellerInvalid: with one message per wrong, missing or unknown field.
    """
    errors: dict[str, str] = {}
    if not isinstance(data, Mapping):
        raise SellerInvalid({"body": N_("Send the seller's fields.")})
    for name in data:
        if name not in SELLER_FIELDS:
            errors[str(name)[:60]] = N_("Unknown field.")
    base = (
        {name: getattr(current, name) for name in SELLER_FIELDS}
        if current is not None
        else dict(DEFAULTS)
    )
    values = {**base, **{k: v for k, v in data.items() if k in SELLER_FIELDS}}
    for name, value in values.items():
        if isinstance(value, str) and _UNSTORABLE.search(value):
            errors[name] = N_(
                "Remove the NUL character (or other character that cannot be stored)."
            )
        elif (
            name != "default_payment_terms_days"
            and value is not None
            and not isinstance(value, str)
        ):
            errors[name] = N_("Enter text.")
    # From here on every value but the payment terms is a string or None.
    values = {k: (None if k in errors else v) for k, v in values.items()}
    clean: dict[str, Any] = {}
    for name, limit in TEXT_FIELDS.items():
        value = _text(values.get(name))
        clean[name] = value
        if name in errors:
            continue
        if value is None and name in _REQUIRED:
            errors[name] = _REQUIRED[name]
        elif value is not None and len(value) > limit:
            errors[name] = (
                N_("The footer is too long (at most 2000 characters).")
                if name == "invoice_footer"
                else N_("This is too long for the field.")
            )
    if clean["website"] and "website" not in errors and not _WEBSITE.fullmatch(clean["website"]):
        errors["website"] = N_("Enter a web address starting with https://.")
    if "country" not in errors:
        _check_country(clean, errors, values.get("country"))
    if "vat_id" not in errors:
        _check_vat_id(clean, errors, values.get("vat_id"))

    if "email" not in errors:
        email = _text(values.get("email"))
        if email is None:
            errors["email"] = _REQUIRED["email"]
        else:
            try:
                clean["email"] = validate_email(email, check_deliverability=False).normalized
            except EmailNotValidError:
                errors["email"] = N_("Enter a valid e-mail address, such as billing@example.com.")
            else:
                if len(clean["email"]) > 254:
                    errors["email"] = N_("This is too long for the field.")
    if "iban" not in errors and "bic" not in errors:
        _check_bank(clean, errors, values.get("iban"), values.get("bic"))

    for name in ("invoice_number_format", "credit_note_number_format"):
        if name in errors:
            continue
        pattern = values.get(name)
        pattern = _text(pattern)
        if not pattern:
            errors[name] = _REQUIRED[name]
        elif len(pattern) > 60:
            errors[name] = N_("This is too long for the field.")
        else:
            problem = number_format_problem(pattern)
            if problem:
                errors[name] = problem
            else:
                clean[name] = pattern
    if "invoice_number_format" in clean and clean.get("invoice_number_format") == clean.get(
        "credit_note_number_format"
    ):
        errors["credit_note_number_format"] = N_(
            "Credit notes need a format of their own, such as CN-{year}-{seq:05d}."
        )

    if "default_currency" not in errors:
        currency = values.get("default_currency")
        currency = (_text(currency) or "").upper()
        if not currency:
            errors["default_currency"] = _REQUIRED["default_currency"]
        elif not is_known_currency(currency):
            errors["default_currency"] = N_("Not an ISO 4217 currency code, such as EUR or USD.")
        else:
            clean["default_currency"] = currency
    if "default_payment_terms_days" not in errors:
        _check_terms(clean, errors, values.get("default_payment_terms_days"))
    if errors:
        raise SellerInvalid(errors)
    return clean


def seller_dict(seller: Seller) -> dict[str, Any]:
    """The editable fields and the logo's fingerprint, JSON-safe (for audit entries)."""
    values = {name: getattr(seller, name) for name in SELLER_FIELDS}
    values["logo_sha256"] = seller.logo_sha256
    values["logo_mime"] = seller.logo_mime
    return values


def list_sellers(session: Session) -> list[Seller]:
    """Every seller, by legal name."""
    return list(session.scalars(sa.select(Seller).order_by(Seller.legal_name, Seller.id)))


def _check_number_collisions(session: Session, seller: Seller, clean: dict) -> dict[str, str]:
    """Formats that would give a number this seller has already used, this year or next."""
    if seller.id is None:
        return {}
    errors: dict[str, str] = {}
    year = utcnow().year
    kinds = (
        ("invoice_number_format", DocumentType.INVOICE),
        ("credit_note_number_format", DocumentType.CREDIT_NOTE),
    )
    for name, document_type in kinds:
        pattern = clean[name]
        if pattern == getattr(seller, name):
            continue
        candidates: set[str] = set()
        for y in (year, year + 1):
            last = (
                session.scalar(
                    sa.select(DocumentSequence.last_number).where(
                        DocumentSequence.seller_id == seller.id,
                        DocumentSequence.document_type == document_type,
                        DocumentSequence.year == y,
                    )
                )
                or 0
            )
            candidates.update(
                pattern.format(year=y, seq=seq) for seq in range(last + 1, last + _COLLISION_PROBE)
            )
        if _numbers_taken(session, seller, document_type, candidates):
            errors[name] = N_(
                "Numbers of this format were already used by this seller; choose another prefix."
            )
    return errors


def _numbers_taken(
    session: Session, seller: Seller, document_type: DocumentType, numbers: set[str]
) -> bool:
    # Imported here: credit notes live with invoices; only this check reads them.
    from portal.invoices.models import CreditNote

    model = Invoice if document_type == DocumentType.INVOICE else CreditNote
    return (
        session.scalar(
            sa.select(model.id)
            .where(model.seller_id == seller.id, model.number.in_(sorted(numbers)))
            .limit(1)
        )
        is not None
    )


def create_seller(session: Session, data: Mapping[str, Any], actor: Actor) -> Seller:
    """A new seller from ``data`` (defaults for absent number formats, currency, terms).

    :raise SellerInvalid: nothing is written then.
    """
    clean = validate_seller(data)
    seller = Seller(**clean)
    session.add(seller)
    session.flush()
    record_audit(
        session, actor, "seller.create", "seller", str(seller.public_id), tenant_id=None,
        after=seller_dict(seller),
    )  # fmt: skip
    return seller


def update_seller(
    session: Session, seller: Seller, data: Mapping[str, Any], actor: Actor
) -> Seller:
    """Change the fields in ``data`` (others keep their value); only invoices finalized
    afterwards show the change. Locks the seller's row.

    :raise SellerInvalid: nothing is written then.
    """
    lock(session, seller)
    before = seller_dict(seller)
    clean = validate_seller(data, current=seller)
    errors = _check_number_collisions(session, seller, clean)
    if errors:
        raise SellerInvalid(errors)
    for name, value in clean.items():
        setattr(seller, name, value)
    session.flush()
    after = seller_dict(seller)
    if after != before:
        record_audit(
            session, actor, "seller.update", "seller", str(seller.public_id), tenant_id=None,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )  # fmt: skip
    return seller


def set_seller_logo(
    session: Session, seller: Seller, content: bytes | None, actor: Actor
) -> Seller:
    """Replace the seller's logo with an uploaded PNG or SVG (``None`` removes it).

    The PNG is decoded and written again, the SVG sanitized (``tenancy/logos.py``); the
    stored bytes are those. Locks the seller's row.

    :raise SellerInvalid: ``{"logo": reason}``; nothing is written then.
    """
    if content is None:
        cleaned, mime = None, None
    else:
        try:
            cleaned, mime = clean_logo(content)
        except LogoRejected as exc:
            raise SellerInvalid({"logo": str(exc)}) from None
    lock(session, seller)
    before = {"logo_sha256": seller.logo_sha256, "logo_mime": seller.logo_mime}
    seller.logo = cleaned
    seller.logo_mime = mime
    session.flush()
    record_audit(
        session, actor, "seller.logo", "seller", str(seller.public_id), tenant_id=None,
        before=before,
        after={"logo_sha256": seller.logo_sha256, "logo_mime": seller.logo_mime,
               "logo_bytes": len(cleaned or b"")},
    )  # fmt: skip
    return seller


__all__ = [
    "SellerInvalid",
    "create_seller",
    "list_sellers",
    "seller_by_public_id",
    "seller_list",
    "number_format_problem",
    "seller_dict",
    "set_seller_logo",
    "update_seller",
    "validate_seller",
]


def seller_by_public_id(session: Session, value: str) -> Seller | None:
    """A seller by its public id (text); None when unknown or malformed."""
    uid = parse_public_id(value)
    return (
        session.scalars(sa.select(Seller).where(Seller.public_id == uid)).first() if uid else None
    )


def seller_list(
    session: Session,
    *,
    where: sa.ColumnElement[bool] | None = None,
    order_by: Sequence[sa.ColumnElement] = (),
    limit: int,
    offset: int = 0,
) -> tuple[list[tuple[Seller, int]], int]:
    """One page of sellers with their number of companies, and the total; filtering,
    counting, sorting and paging run in SQL (the seller id breaks ties)."""
    counts = (
        sa.select(Tenant.seller_id, sa.func.count().label("companies"))
        .group_by(Tenant.seller_id)
        .subquery()
    )
    query = sa.select(Seller, sa.func.coalesce(counts.c.companies, 0)).outerjoin(
        counts, counts.c.seller_id == Seller.id
    )
    if where is not None:
        query = query.where(where)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    order = list(order_by) or [Seller.legal_name.asc()]
    rows = session.execute(query.order_by(*order, Seller.id.asc()).limit(limit).offset(offset))
    return [(seller, int(companies)) for seller, companies in rows], int(total)
