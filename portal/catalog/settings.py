"""Company billing settings: read, validate and change them (audited)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import CompanyBillingSettings
from portal.db import lock
from portal.ops.audit import N_, Actor, record_audit
from portal.tenancy.models import Tenant


class SettingsInvalid(Exception):
    """Company settings that fail validation; nothing was written."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        #: Field name → English message.
        self.errors = errors


#: Editable settings and their Python types (``int | None``: the field may be empty).
SETTINGS_FIELDS: dict[str, Any] = {
    "billing_day": int,
    "payment_terms_days": int | None,
    "auto_finalize": bool,
    "auto_send": bool,
    "auto_collect": bool,
    "show_drafts_to_tenant": bool,
    "discount_percent": Decimal,
    "notes": str | None,
    "self_service_quantity": bool,
    "self_service_price_switch": bool,
    "self_service_cancel": bool,
}
#: The self-service switches (what the company's own users may change on their
#: subscriptions); all allowed by default.
SELF_SERVICE_FIELDS = ("self_service_quantity", "self_service_price_switch", "self_service_cancel")


#: Longest internal note accepted.
NOTES_MAX = 2000


_PERCENT_QUANTUM = Decimal("0.0001")


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def settings_dict(settings: CompanyBillingSettings) -> dict[str, Any]:
    """The editable settings as JSON-safe values (the discount as a decimal string)."""
    values: dict[str, Any] = {name: getattr(settings, name) for name in SETTINGS_FIELDS}
    values["discount_percent"] = _decimal_text(Decimal(values["discount_percent"] or 0))
    return values


def company_settings(session: Session, tenant: Tenant) -> CompanyBillingSettings:
    """The company's stored settings, or a new unsaved row holding the defaults."""
    settings = session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant.id)
    ).first()
    if settings is not None:
        return settings
    return CompanyBillingSettings(
        tenant_id=tenant.id,
        billing_day=1,
        payment_terms_days=None,
        auto_finalize=True,
        auto_send=False,
        auto_collect=True,
        show_drafts_to_tenant=False,
        discount_percent=Decimal(0),
        notes=None,
        self_service_quantity=True,
        self_service_price_switch=True,
        self_service_cancel=True,
    )


def _int(value: Any, low: int, high: int, *, optional: bool) -> int | None:
    """An int in [low, high] from an int or digit string; raises ValueError with a message."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise ValueError(N_("This field is required."))
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(N_("Enter a whole number."))
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(N_("Enter a whole number.")) from None
    if not isinstance(value, int):
        raise ValueError(N_("Enter a whole number."))
    if not low <= value <= high:
        raise ValueError(N_("Out of range."))
    return value


def _percent(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(N_("Enter a percentage between 0 and 100."))
    try:
        # A float from JSON goes through its shortest text form, never its binary value.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(N_("Enter a percentage between 0 and 100.")) from None
    if not number.is_finite() or not Decimal(0) <= number <= Decimal(100):
        raise ValueError(N_("Enter a percentage between 0 and 100."))
    if number != number.quantize(_PERCENT_QUANTUM):
        raise ValueError(N_("Use at most four decimal places."))
    return number.quantize(_PERCENT_QUANTUM)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(N_("Enter true or false."))
    return value


def _notes(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(N_("Enter text."))
    if len(value) > NOTES_MAX:
        raise ValueError(N_("The note is too long (at most 2000 characters)."))
    if any(char == "\x00" or "\ud800" <= char <= "\udfff" for char in value):
        # No text column stores a NUL (PostgreSQL refuses it) or a lone surrogate.
        raise ValueError(N_("Remove the NUL character from the note."))
    return value.strip() or None


def validate_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert a complete settings dict (the self-service switches may be left
    out: an update keeps their stored value).

    :raise SettingsInvalid: with one message per wrong, missing or unknown field.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in values:
        if name not in SETTINGS_FIELDS:
            errors[name] = N_("Unknown setting.")
    checks = {
        "billing_day": lambda v: _int(v, 1, 28, optional=False),
        "payment_terms_days": lambda v: _int(v, 0, 365, optional=True),
        "auto_finalize": _bool,
        "auto_send": _bool,
        "auto_collect": _bool,
        "show_drafts_to_tenant": _bool,
        "discount_percent": _percent,
        "notes": _notes,
        **{name: _bool for name in SELF_SERVICE_FIELDS},
    }
    for name, check in checks.items():
        if name not in values:
            if name not in SELF_SERVICE_FIELDS:  # the switches may be left out: kept as they are
                errors[name] = N_("This field is required.")
            continue
        try:
            clean[name] = check(values[name])
        except ValueError as exc:
            errors[name] = str(exc)
    if errors.get("billing_day") == N_("Out of range."):
        errors["billing_day"] = N_("Choose a day between 1 and 28.")
    if errors.get("payment_terms_days") == N_("Out of range."):
        errors["payment_terms_days"] = N_("Enter between 0 and 365 days, or leave it empty.")
    if errors:
        raise SettingsInvalid(errors)
    return clean


def update_company_settings(
    session: Session, tenant: Tenant, values: Mapping[str, Any], actor: Actor
) -> CompanyBillingSettings:
    """Replace the company's settings with ``values`` (every field; the self-service
    switches left out keep their value), audited before/after.

    :raise SettingsInvalid: when any field is wrong; nothing is written then.
    """
    clean = validate_settings(values)
    # The company's lock serializes its settings writes, the first one (which creates the
    # row) included; the "before" of the audit is read under it.
    lock(session, tenant)
    settings = company_settings(session, tenant)
    if settings.id is not None:
        lock(session, settings)
    before = settings_dict(settings) if settings.id is not None else None
    for name, value in clean.items():
        setattr(settings, name, value)
    session.add(settings)
    session.flush()
    record_audit(
        session,
        actor,
        "settings.update",
        "company_billing_settings",
        str(tenant.public_id),
        tenant_id=tenant.id,
        before=before,
        after=settings_dict(settings),
    )
    return settings
