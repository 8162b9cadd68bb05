"""One-off charges: billed on the company's next periodic invoice or issued now on their own."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import ChargeTiming, OneOffCharge, TaxTreatment
from portal.db import lock
from portal.domain.pricing import PRICE_PLACES, QUANTITY_PLACES
from portal.invoices.drafts import create_draft
from portal.invoices.generation import charge_line, load_contexts
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind
from portal.ops.audit import N_, Actor, AdminActionRefused, record_audit
from portal.tenancy.models import Tenant

DESCRIPTION_LENGTH = 500
#: Bounds (exclusive) of quantities, of unit prices (as the catalog's prices: the exact
#: decimals are scaled integers on SQLite, so a unit price of 10^9 would not fit) and of a
#: charge's amount, quantity × unit price, in major units (its minor units fit any column).
MAX_AMOUNT = Decimal("1e12")
MAX_UNIT_PRICE = Decimal("1e8")
MAX_LINE_AMOUNT = Decimal("1e12")


class ChargeRefused(AdminActionRefused):
    """A one-off charge that cannot be added; ``field`` names the input at fault."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(code, message)
        self.field = field


@dataclass(frozen=True)
class NewCharge:
    """A one-off charge as entered (strings from forms, values from JSON)."""

    description: Any
    quantity: Any
    unit_price: Any
    tax_treatment: Any = TaxTreatment.SERVICES.value
    timing: Any = ChargeTiming.NEXT_INVOICE.value
    vat_exemption_reason: Any = None


def _decimal(
    value: Any, field: str, places: int, *, positive: bool, limit: Decimal = MAX_AMOUNT
) -> Decimal:
    message = N_("Enter a number, e.g. 2 or 149.90.")
    if value is None or isinstance(value, (bool, float)):
        raise ChargeRefused("invalid_number", message, field)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ChargeRefused("invalid_number", message, field) from None
    if not number.is_finite():
        raise ChargeRefused("invalid_number", message, field)
    if positive and number <= 0:
        raise ChargeRefused(
            "quantity_not_positive", N_("The quantity must be greater than zero."), field
        )
    if number < 0:
        raise ChargeRefused(
            "negative_price", N_("The unit price cannot be negative: issue a credit note."), field
        )
    if number >= limit or -int(number.as_tuple().exponent) > places:
        raise ChargeRefused(
            "invalid_number", N_("The number is too large or has too many decimal places."), field
        )
    return number


def _choice(value: Any, enum_cls: type, field: str):
    try:
        return enum_cls(value)
    except ValueError:
        raise ChargeRefused("invalid_choice", N_("Choose one of the options."), field) from None


def _text(value: Any, field: str, *, required: bool) -> str | None:
    text = value.replace("\x00", "").strip() if isinstance(value, str) else None
    if value is not None and not isinstance(value, str):
        raise ChargeRefused("invalid_text", N_("Enter text."), field)
    if not text:
        if required:
            raise ChargeRefused("description_required", N_("Describe the charge."), field)
        return None
    if len(text) > DESCRIPTION_LENGTH:
        raise ChargeRefused("text_too_long", N_("Keep it under 500 characters."), field)
    return text


def validate_charge(new: NewCharge) -> dict[str, Any]:
    """The column values of a one-off charge, checked.

    :raise ChargeRefused: naming the first field at fault.
    """
    values = {
        "description": _text(new.description, "description", required=True),
        "quantity": _decimal(new.quantity, "quantity", QUANTITY_PLACES, positive=True),
        "unit_price": _decimal(
            new.unit_price, "unit_price", PRICE_PLACES, positive=False, limit=MAX_UNIT_PRICE
        ),
        "tax_treatment": _choice(new.tax_treatment, TaxTreatment, "tax_treatment"),
        "timing": _choice(new.timing, ChargeTiming, "timing"),
        "vat_exemption_reason": _text(
            new.vat_exemption_reason, "vat_exemption_reason", required=False
        ),
    }
    if values["quantity"] * values["unit_price"] >= MAX_LINE_AMOUNT:
        raise ChargeRefused(
            "invalid_number",
            N_("The number is too large or has too many decimal places."),
            "unit_price",
        )
    return values


def charge_state(charge: OneOffCharge) -> dict[str, Any]:
    """What the audit log keeps of a charge."""
    return {
        "description": charge.description,
        "quantity": f"{charge.quantity.normalize():f}",
        "unit_price": f"{charge.unit_price.normalize():f}",
        "currency": charge.currency,
        "tax_treatment": charge.tax_treatment.value,
        "timing": charge.timing.value,
        "invoice_id": charge.invoice_id,
    }


def add_charge(
    session: Session,
    tenant: Tenant,
    actor: Actor,
    new: NewCharge,
    *,
    today: dt.date | None = None,
) -> OneOffCharge:
    """Add a one-off charge in the company's currency.

    ``next_invoice``: the company's next periodic invoice bills it (the invoice run sets
    ``invoice_id``, once). ``now``: it is issued at once as an invoice of its own (a draft
    finalized through the usual services).

    :raise ChargeRefused: for bad input or an archived company (nothing is written).
    """
    values = validate_charge(new)
    today = today or dt.date.today()
    lock(session, tenant)
    if tenant.archived_at is not None or not tenant.is_active:
        raise ChargeRefused(
            "company_archived", N_("The company is archived: it cannot be billed any more.")
        )
    charge = OneOffCharge(
        tenant_id=tenant.id, currency=tenant.currency, created_by=actor.label[:254], **values
    )
    session.add(charge)
    session.flush()
    if charge.timing == ChargeTiming.NOW:
        context = load_contexts(session, [tenant], today, today + dt.timedelta(days=1))[0]
        invoice = create_draft(
            session,
            tenant,
            kind=InvoiceKind.MANUAL,
            period_start=None,  # type: ignore[arg-type]  # a manual invoice has no period
            period_end=None,  # type: ignore[arg-type]
            lines=[charge_line(context, charge, today, (today, today))],
            known_new=True,  # a manual invoice has no period: nothing to look up
        )
        finalize_invoice(session, invoice, issue_date=today)
        charge.invoice_id = invoice.id
        session.flush()
    record_audit(
        session,
        actor,
        "charge.create",
        "one_off_charge",
        str(charge.public_id),
        tenant_id=tenant.id,
        after=charge_state(charge),
    )
    return charge


def company_charges(session: Session, tenant: Tenant, *, limit: int = 50) -> list[OneOffCharge]:
    """The company's one-off charges, newest first."""
    return list(
        session.scalars(
            sa.select(OneOffCharge)
            .where(OneOffCharge.tenant_id == tenant.id)
            .order_by(OneOffCharge.id.desc())
            .limit(limit)
        )
    )


def charge_invoice(session: Session, charge: OneOffCharge) -> Invoice | None:
    """The invoice that billed the charge, if any."""
    return session.get(Invoice, charge.invoice_id) if charge.invoice_id else None
