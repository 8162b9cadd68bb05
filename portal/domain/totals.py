"""Invoice arithmetic as EN 16931 defines it: line net amounts, VAT breakdown, totals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from portal.domain.money import Money


@dataclass(frozen=True)
class LineInput:
    """What the arithmetic needs of a line."""

    quantity: Decimal
    unit_price: Decimal  # major units (BT-146)
    vat_category: str
    vat_rate: Decimal  # percent


@dataclass(frozen=True)
class AllowanceCharge:
    """A document-level allowance (is_charge False) or charge, amount >= 0."""

    is_charge: bool
    amount: Money
    vat_category: str
    vat_rate: Decimal


@dataclass(frozen=True)
class VatGroup:
    """One row of the VAT breakdown (BG-23)."""

    category: str
    rate: Decimal
    taxable: Money  # BT-116
    tax: Money  # BT-117


@dataclass(frozen=True)
class Totals:
    """Document totals (BG-22)."""

    line_nets: tuple[Money, ...]
    lines_total: Money  # BT-106
    allowance_total: Money  # BT-107
    charge_total: Money  # BT-108
    tax_exclusive: Money  # BT-109
    tax: Money  # BT-110
    tax_inclusive: Money  # BT-112
    prepaid: Money  # BT-113
    rounding: Money  # BT-114
    amount_due: Money  # BT-115
    vat_breakdown: tuple[VatGroup, ...]


def line_net(line: LineInput, currency: str) -> Money:
    """BT-131: quantity × unit price, rounded half-up to the minor unit."""
    return Money.from_decimal(line.quantity * line.unit_price, currency)


def vat_amount(taxable: Money, rate: Decimal) -> Money:
    """BT-117: taxable amount × rate / 100, rounded half-up to the minor unit."""
    minor = (Decimal(taxable.minor) * rate / Decimal(100)).quantize(
        Decimal(1), rounding=ROUND_HALF_UP
    )
    return Money(int(minor), taxable.currency)


def compute_totals(
    lines: list[LineInput],
    currency: str,
    allowances_charges: list[AllowanceCharge] = (),  # type: ignore[assignment]
    prepaid: Money | None = None,
) -> Totals:
    """All document totals; VAT is computed per category and rate on the group's net."""
    zero = Money.zero(currency)
    nets = tuple(line_net(line, currency) for line in lines)
    taxable: dict[tuple[str, Decimal], Money] = defaultdict(lambda: zero)
    for line, net in zip(lines, nets, strict=True):
        key = (line.vat_category, line.vat_rate)
        taxable[key] = taxable[key] + net
    allowance_total = charge_total = zero
    for ac in allowances_charges:
        key = (ac.vat_category, ac.vat_rate)
        if ac.is_charge:
            charge_total += ac.amount
            taxable[key] = taxable[key] + ac.amount
        else:
            allowance_total += ac.amount
            taxable[key] = taxable[key] - ac.amount
    breakdown = tuple(
        VatGroup(category, rate, amount, vat_amount(amount, rate))
        for (category, rate), amount in sorted(
            taxable.items(), key=lambda kv: (kv[0][0], -kv[0][1])
        )
    )
    lines_total = sum(nets, zero)
    tax_exclusive = lines_total - allowance_total + charge_total
    tax = sum((group.tax for group in breakdown), zero)
    tax_inclusive = tax_exclusive + tax
    prepaid = prepaid or zero
    rounding = zero
    return Totals(
        line_nets=nets,
        lines_total=lines_total,
        allowance_total=allowance_total,
        charge_total=charge_total,
        tax_exclusive=tax_exclusive,
        tax=tax,
        tax_inclusive=tax_inclusive,
        prepaid=prepaid,
        rounding=rounding,
        amount_due=tax_inclusive - prepaid + rounding,
        vat_breakdown=breakdown,
    )
