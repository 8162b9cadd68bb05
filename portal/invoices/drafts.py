"""Draft invoices: create them, price their lines, compute their totals, delete them.

Services flush and never commit; the request's unit of work (or the job) commits once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import lock
from portal.domain.money import Money
from portal.domain.totals import AllowanceCharge, LineInput, compute_totals, line_net
from portal.invoices.errors import InvoiceNotDraft
from portal.invoices.models import (
    Invoice,
    InvoiceAllowanceCharge,
    InvoiceLine,
    InvoiceVatBreakdown,
)
from portal.invoices.states import (
    InvoiceKind,
    InvoiceStatus,
    LineKind,
    VatCategory,
)
from portal.tenancy.models import Tenant


@dataclass(frozen=True)
class DraftLine:
    """A line to put on a draft invoice."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    kind: LineKind = LineKind.SUBSCRIPTION
    vat_category: VatCategory = VatCategory.STANDARD
    vat_rate: Decimal = Decimal(0)
    vat_exemption_reason: str | None = None
    vat_exemption_code: str | None = None
    unit_code: str = "C62"
    price_id: int | None = None
    subscription_item_id: int | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    details: dict = field(default_factory=dict)


def find_period_invoice(
    session: Session, tenant: Tenant, kind: InvoiceKind, period_start: dt.date, period_end: dt.date
) -> Invoice | None:
    """The tenant's invoice of ``kind`` for exactly this period, if it exists."""
    return session.scalars(
        sa.select(Invoice).where(
            Invoice.tenant_id == tenant.id,
            Invoice.kind == kind,
            Invoice.period_start == period_start,
            Invoice.period_end == period_end,
        )
    ).first()


def create_draft(
    session: Session,
    tenant: Tenant,
    *,
    kind: InvoiceKind,
    period_start: dt.date,
    period_end: dt.date,
    lines: list[DraftLine],
    subscription_id: int | None = None,
    discount_percent: Decimal = Decimal(0),
    allowances: Sequence[dict] = (),
    known_new: bool = False,
    flush: bool = True,
) -> Invoice:
    """A draft invoice with ``lines`` and its totals; idempotent per tenant, kind and period.

    If the invoice already exists it is returned unchanged, whatever its state.

    :param allowances: further document allowances after the discount (coupons), as
        :class:`InvoiceAllowanceCharge` column values.
    :param known_new: the caller has already looked for the invoice (in bulk) and found
        none, so the lookup is skipped; the unique constraint still refuses a duplicate.
    :param flush: False leaves the insert to the caller's next flush (one for a batch).
    """
    if not known_new:
        existing = find_period_invoice(session, tenant, kind, period_start, period_end)
        if existing is not None:
            return existing
    invoice = Invoice(
        tenant_id=tenant.id,
        seller_id=tenant.seller_id,
        kind=kind,
        status=InvoiceStatus.DRAFT,
        currency=tenant.currency,
        subscription_id=subscription_id,
        period_start=period_start,
        period_end=period_end,
    )
    for position, line in enumerate(lines, start=1):
        invoice.lines.append(
            InvoiceLine(
                tenant_id=tenant.id,
                position=position,
                kind=line.kind,
                description=line.description,
                quantity=line.quantity,
                unit_code=line.unit_code,
                unit_price=line.unit_price,
                net_amount_minor=0,
                vat_category=line.vat_category,
                vat_rate=line.vat_rate,
                vat_exemption_reason=line.vat_exemption_reason,
                vat_exemption_code=line.vat_exemption_code,
                price_id=line.price_id,
                subscription_item_id=line.subscription_item_id,
                period_start=line.period_start or period_start,
                period_end=line.period_end or period_end,
                details=dict(line.details),
            )
        )
    if discount_percent:
        invoice.allowance_charges = discount_allowances(
            invoice.lines, discount_percent, tenant.currency
        )
    invoice.allowance_charges.extend(InvoiceAllowanceCharge(**row) for row in allowances)
    recompute_totals(invoice)
    session.add(invoice)
    if flush:
        session.flush()
    return invoice


def discount_allowances(
    lines: Iterable[InvoiceLine | DraftLine], percent: Decimal, currency: str
) -> list[InvoiceAllowanceCharge]:
    """A percentage discount as one document allowance per VAT category and rate (BG-20).

    EN 16931 needs a VAT category on every allowance, so the discount is split by the
    VAT groups it reduces; each part is rounded half-up to the minor unit, once, here.
    """
    return [InvoiceAllowanceCharge(**row) for row in discount_rows(lines, percent, currency)]


def discount_rows(
    lines: Iterable[InvoiceLine | DraftLine], percent: Decimal, currency: str
) -> list[dict]:
    """The column values of :func:`discount_allowances`, without ORM objects."""
    bases: dict[tuple, int] = {}
    for line in lines:
        key = (line.vat_category, line.vat_rate)
        net = line_net(
            LineInput(line.quantity, line.unit_price, line.vat_category.value, line.vat_rate),
            currency,
        )
        bases[key] = bases.get(key, 0) + net.minor
    return [
        {
            "is_charge": False,
            "amount_minor": int(
                (Decimal(base) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
            ),
            "base_minor": base,
            "percent": percent,
            "reason": "Discount",
            "reason_code": "95",  # UNCL5189: discount
            "vat_category": category,
            "vat_rate": rate,
        }
        for (category, rate), base in bases.items()
        if base > 0
    ]


@dataclass
class DraftTotals:
    """What :func:`recompute_totals` writes: line nets, document totals, VAT breakdown."""

    line_nets: list[int]
    columns: dict[str, int]  # lines_total_minor … amount_due_minor
    vat_rows: list[dict]  # InvoiceVatBreakdown column values, in breakdown order


def draft_totals(lines: Sequence, allowance_charges: Sequence[dict], currency: str) -> DraftTotals:
    """Totals of lines (InvoiceLine or DraftLine) and allowances/charges (dicts with
    ``is_charge``, ``amount_minor``, ``vat_category`` and ``vat_rate``)."""
    totals = compute_totals(
        [LineInput(li.quantity, li.unit_price, li.vat_category.value, li.vat_rate) for li in lines],
        currency,
        [
            AllowanceCharge(
                ac["is_charge"],
                Money(ac["amount_minor"], currency),
                VatCategory(ac["vat_category"]).value,
                ac["vat_rate"],
            )
            for ac in allowance_charges
        ],
    )
    exemptions = {
        (li.vat_category.value, li.vat_rate): (li.vat_exemption_reason, li.vat_exemption_code)
        for li in reversed(lines)
    }
    return DraftTotals(
        line_nets=[net.minor for net in totals.line_nets],
        columns={
            "lines_total_minor": totals.lines_total.minor,
            "allowance_total_minor": totals.allowance_total.minor,
            "charge_total_minor": totals.charge_total.minor,
            "tax_exclusive_minor": totals.tax_exclusive.minor,
            "tax_minor": totals.tax.minor,
            "tax_inclusive_minor": totals.tax_inclusive.minor,
            "prepaid_minor": totals.prepaid.minor,
            "rounding_minor": totals.rounding.minor,
            "amount_due_minor": totals.amount_due.minor,
        },
        vat_rows=[
            {
                "category": VatCategory(group.category),
                "rate": group.rate,
                "taxable_minor": group.taxable.minor,
                "tax_minor": group.tax.minor,
                "exemption_reason": exemptions.get((group.category, group.rate), (None, None))[0],
                "exemption_code": exemptions.get((group.category, group.rate), (None, None))[1],
            }
            for group in totals.vat_breakdown
        ],
    )


def recompute_totals(invoice: Invoice) -> None:
    """Recompute line nets, VAT breakdown and totals of a draft from its lines.

    :raise InvoiceNotDraft: when the invoice is issued (issued invoices are frozen).
    """
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvoiceNotDraft(invoice.number)
    totals = draft_totals(
        invoice.lines,
        [
            {
                "is_charge": ac.is_charge,
                "amount_minor": ac.amount_minor,
                "vat_category": ac.vat_category,
                "vat_rate": ac.vat_rate,
            }
            for ac in invoice.allowance_charges
        ],
        invoice.currency,
    )
    for line, net in zip(invoice.lines, totals.line_nets, strict=True):
        line.net_amount_minor = net
    for name, value in totals.columns.items():
        setattr(invoice, name, value)
    invoice.vat_breakdown = [InvoiceVatBreakdown(**row) for row in totals.vat_rows]


def delete_draft(session: Session, invoice: Invoice) -> None:
    """Delete a draft; issued invoices are voided or credited instead.

    :raise InvoiceNotDraft: when the invoice has been finalized (checked under lock).
    """
    lock(session, invoice)
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvoiceNotDraft(f"invoice {invoice.number} is {invoice.status}; void or credit it")
    session.delete(invoice)
    session.flush()
