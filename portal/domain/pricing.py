"""Prices and the invoice lines they produce: pricing models, billing periods, proration, trials."""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from portal.domain.money import Money
from portal.domain.totals import LineInput, line_net

MODELS = ("flat", "per_unit", "graduated", "volume", "package")
TIERED_MODELS = ("graduated", "volume")
# Only licensed prices (a fee or a seat count fixed in advance) can be prorated: metered usage
# is billed in arrears for what was used, so there is no unused time to credit.
LICENSED_MODELS = ("flat", "per_unit")
INTERVALS = ("month", "year")

# The scales the invoice tables store; every quantity and unit price returned here fits them.
QUANTITY_PLACES = 6
PRICE_PLACES = 10

# Fallback descriptions for an unnamed price.
_DEFAULT_NAMES = {
    "flat": "Flat fee",
    "per_unit": "Units",
    "graduated": "Usage",
    "volume": "Usage",
    "package": "Usage",
}
# Fixed English abbreviations: calendar.month_abbr follows the process locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class InvalidPrice(ValueError):
    """A price specification, or a quantity to price with it, that cannot be billed."""


class InvalidPeriod(ValueError):
    """A billing interval, period or date that the calculation cannot use."""


def _places(value: Decimal) -> int:
    """Decimal places ``value`` needs; trailing zeros don't count (Decimal("1.50") needs 1)."""
    if not value:
        return 0
    _, digits, exponent = value.as_tuple()
    text = "".join(map(str, digits))
    trailing = len(text) - len(text.rstrip("0"))
    return max(0, -(int(exponent) + trailing))


def _check_amount(value: object, what: str, places: int) -> None:
    """Refuse anything but a finite, non-negative Decimal with at most ``places`` decimals."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise InvalidPrice(f"{what} must be finite, got {value}")
    if value < 0:
        raise InvalidPrice(f"{what} must not be negative, got {value}")
    if _places(value) > places:
        raise InvalidPrice(f"{what} has more than {places} decimal places: {value}")


def _check_quantity(quantity: object) -> None:
    _check_amount(quantity, "quantity", QUANTITY_PLACES)


@dataclass(frozen=True)
class Tier:
    """One band of a tiered price: units up to ``up_to`` (inclusive; None = no upper bound)."""

    up_to: Decimal | None
    unit_amount: Decimal  # major units per unit
    flat_amount: Decimal = Decimal(0)  # charged once when the band is reached

    def __post_init__(self) -> None:
        if self.up_to is not None:
            _check_amount(self.up_to, "tier up_to", QUANTITY_PLACES)
        _check_amount(self.unit_amount, "tier unit_amount", PRICE_PLACES)
        _check_amount(self.flat_amount, "tier flat_amount", PRICE_PLACES)


@dataclass(frozen=True)
class PriceSpec:
    """How a price turns a quantity into money; amounts are in major units of ``currency``."""

    model: str
    currency: str
    unit_amount: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None
    name: str = ""

    def __post_init__(self) -> None:
        # A list of tiers would make the spec unhashable and mutable behind our back.
        object.__setattr__(self, "tiers", tuple(self.tiers))
        if self.model not in MODELS:
            raise InvalidPrice(f"unknown pricing model {self.model!r}; expected one of {MODELS}")
        try:
            Money.zero(self.currency)
        except ValueError as exc:
            raise InvalidPrice(str(exc)) from exc
        # Fields that another model would use are refused rather than ignored: a package size
        # on a per-unit price is a configuration mistake, not something to bill around.
        if self.model in TIERED_MODELS:
            if self.unit_amount is not None:
                raise InvalidPrice(f"a {self.model} price takes its amounts from its tiers")
            self._check_tiers()
        else:
            if self.unit_amount is None:
                raise InvalidPrice(f"a {self.model} price needs a unit_amount")
            _check_amount(self.unit_amount, "unit_amount", PRICE_PLACES)
            if self.tiers:
                raise InvalidPrice("only graduated and volume prices have tiers")
        if self.model == "package":
            if self.package_size is None:
                raise InvalidPrice("a package price needs a package_size")
            _check_amount(self.package_size, "package_size", QUANTITY_PLACES)
            if not self.package_size:
                raise InvalidPrice("package_size must be positive")
        elif self.package_size is not None:
            raise InvalidPrice("only package prices have a package_size")

    def _check_tiers(self) -> None:
        """Bounds positive and strictly increasing; the last tier, and only it, unbounded."""
        if not self.tiers:
            raise InvalidPrice(f"a {self.model} price needs at least one tier")
        *bounded, last = self.tiers
        # Requiring an open-ended last tier means every quantity has a price, so pricing
        # can never fail at invoice time for a customer who used more than expected.
        if last.up_to is not None:
            raise InvalidPrice("the last tier must be unbounded (up_to=None)")
        lower = Decimal(0)
        for tier in bounded:
            if tier.up_to is None:
                raise InvalidPrice("only the last tier may be unbounded")
            if tier.up_to <= lower:
                raise InvalidPrice(
                    f"tier bounds must be positive and strictly increasing: {tier.up_to} "
                    f"follows {lower}"
                )
            lower = tier.up_to

    @property
    def label(self) -> str:
        """The name lines are described by."""
        return self.name or _DEFAULT_NAMES[self.model]


@dataclass(frozen=True)
class PricedLine:
    """One invoice line before VAT: quantity × unit price (major units), and how it arose.

    ``details`` holds only JSON-safe values (str, int, bool, None; Decimals as strings) so it
    can be stored with the line as an audit trail.
    """

    description: str
    quantity: Decimal
    unit_price: Decimal
    details: dict[str, object]


def _unit_amount(price: PriceSpec) -> Decimal:
    """The unit amount of an untiered price; ``PriceSpec.__post_init__`` refuses one without."""
    assert price.unit_amount is not None
    return price.unit_amount


def _package_size(price: PriceSpec) -> Decimal:
    """The package size of a package price; ``PriceSpec.__post_init__`` refuses one without."""
    assert price.package_size is not None
    return price.package_size


def _number(value: Decimal) -> str:
    """A quantity for descriptions: thousands separators, no trailing zeros ("10,001", "0.5")."""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    # normalize() only drops trailing zeros here: a non-integral value has no positive exponent.
    return f"{value.normalize():,f}"


def _range(lower: Decimal, upper: Decimal | None) -> str:
    """The units a tier covers as a customer reads them.

    A tier covers (lower, upper]. With whole-number bounds that reads in whole units:
    "1–10,000", "10,001–100,000", "100,001 and above". Fractional bounds (e.g. GB) can't be
    written that way, so they read "up to 0.5", "over 0.5 up to 2.5", "over 2.5".
    """
    whole = lower == lower.to_integral_value() and (
        upper is None or upper == upper.to_integral_value()
    )
    if whole:
        first = lower + 1
        if upper is None:
            return f"{_number(first)} and above"
        if first == upper:
            return _number(upper)
        return f"{_number(first)}–{_number(upper)}"
    if upper is None:
        return f"over {_number(lower)}"
    if not lower:
        return f"up to {_number(upper)}"
    return f"over {_number(lower)} up to {_number(upper)}"


def _bands(tiers: tuple[Tier, ...]) -> Iterable[tuple[int, Decimal, Tier]]:
    """Each tier with its index and the exclusive lower bound it starts above."""
    lower = Decimal(0)
    for index, tier in enumerate(tiers):
        yield index, lower, tier
        lower = tier.up_to if tier.up_to is not None else lower


def _tier_lines(
    price: PriceSpec, index: int, lower: Decimal, tier: Tier, units: Decimal
) -> list[PricedLine]:
    """The units line of a tier, and its flat-fee line when it has one."""
    span = _range(lower, tier.up_to)
    details: dict[str, object] = {
        "model": price.model,
        "tier_index": index,
        "range": span,
        "tier_above": str(lower),
        "tier_up_to": None if tier.up_to is None else str(tier.up_to),
        "units": str(units),
        "flat_fee": False,
    }
    description = f"{price.label} ({span})"
    lines = [PricedLine(description, units, tier.unit_amount, details)]
    if tier.flat_amount:
        lines.append(
            PricedLine(
                f"{description}, flat fee",
                Decimal(1),
                tier.flat_amount,
                {**details, "flat_fee": True},
            )
        )
    return lines


def _flat(price: PriceSpec, quantity: Decimal) -> list[PricedLine]:
    # The fee is owed for the period whatever the usage, so quantity 0 still bills it.
    return [PricedLine(price.label, Decimal(1), _unit_amount(price), {"model": "flat"})]


def _per_unit(price: PriceSpec, quantity: Decimal) -> list[PricedLine]:
    if not quantity:
        return []
    return [PricedLine(price.label, quantity, _unit_amount(price), {"model": "per_unit"})]


def _graduated(price: PriceSpec, quantity: Decimal) -> list[PricedLine]:
    lines: list[PricedLine] = []
    for index, lower, tier in _bands(price.tiers):
        # A tier is reached only when units fall in it: a free allowance shows as a zero line,
        # but an unreached tier (and its flat fee) does not appear at all.
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        lines += _tier_lines(price, index, lower, tier, upper - lower)
    return lines


def _volume(price: PriceSpec, quantity: Decimal) -> list[PricedLine]:
    # As with graduated, no usage reaches no tier: quantity 0 bills nothing, not a flat fee.
    if not quantity:
        return []
    index, lower, tier = next(
        band for band in _bands(price.tiers) if band[2].up_to is None or quantity <= band[2].up_to
    )
    return _tier_lines(price, index, lower, tier, quantity)


def _package(price: PriceSpec, quantity: Decimal) -> list[PricedLine]:
    if not quantity:
        return []
    size = _package_size(price)
    # Fractions keep the division exact; Decimal division could round 3.000…01 down to 3.
    packages = math.ceil(Fraction(quantity) / Fraction(size))
    details: dict[str, object] = {
        "model": "package",
        "units": str(quantity),
        "package_size": str(size),
        "packages": packages,
    }
    description = f"{price.label} ({_number(quantity)} units in packages of {_number(size)})"
    return [PricedLine(description, Decimal(packages), _unit_amount(price), details)]


_PRICERS: dict[str, Callable[[PriceSpec, Decimal], list[PricedLine]]] = {
    "flat": _flat,
    "per_unit": _per_unit,
    "graduated": _graduated,
    "volume": _volume,
    "package": _package,
}


def price_lines(price: PriceSpec, quantity: Decimal) -> list[PricedLine]:
    """The invoice lines that ``quantity`` units cost under ``price`` for one period."""
    _check_quantity(quantity)
    return _PRICERS[price.model](price, quantity)


def lines_amount(lines: Iterable[PricedLine], currency: str) -> Money:
    """The sum of the lines' nets, each rounded on its own as the invoice rounds it (BT-131)."""
    nets = (
        line_net(LineInput(line.quantity, line.unit_price, "", Decimal(0)), currency)
        for line in lines
    )
    return sum(nets, Money.zero(currency))


def amount(price: PriceSpec, quantity: Decimal) -> Money:
    """What ``quantity`` units cost under ``price``: the sum of its rounded line nets."""
    return lines_amount(price_lines(price, quantity), price.currency)


# Billing periods -------------------------------------------------------------------------------


def _interval_months(interval: str, count: int) -> int:
    if interval not in INTERVALS:
        raise InvalidPeriod(f"unknown interval {interval!r}; expected 'month' or 'year'")
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be an int, not {type(count).__name__}")
    return count * (12 if interval == "year" else 1)


def _add_months(day: date, months: int) -> date:
    """``day`` moved by ``months``, clamped to the last day of the month it lands in."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_interval(day: date, interval: str, count: int) -> date:
    """``day`` plus ``count`` months or years (negative goes back); Jan 31 + 1 month = Feb 28/29."""
    return _add_months(day, _interval_months(interval, count))


def period_containing(anchor: date, interval: str, count: int, on: date) -> tuple[date, date]:
    """The billing period [start, end) that contains ``on``.

    Period n starts at ``anchor`` + n × (count intervals), always computed from the anchor:
    adding one month at a time would drift (Jan 31 → Feb 28 → Mar 28), whereas from the
    anchor the periods run Jan 31, Feb 28, Mar 31, Apr 30…
    """
    step = _interval_months(interval, count)
    if step <= 0:
        raise InvalidPeriod(f"count must be positive, got {count}")
    if on < anchor:
        raise InvalidPeriod(f"{on} is before the billing anchor {anchor}")
    elapsed = (on.year - anchor.year) * 12 + on.month - anchor.month
    index = elapsed // step
    start = _add_months(anchor, index * step)
    if start > on:
        # The period starts in on's month but on a later day: on is still in the one before.
        index -= 1
        start = _add_months(anchor, index * step)
    return start, _add_months(anchor, (index + 1) * step)


def next_billing_date(anchor: date, interval: str, count: int, on: date) -> date:
    """The day the period containing ``on`` ends and the next is billed."""
    return period_containing(anchor, interval, count, on)[1]


# Proration and trials --------------------------------------------------------------------------


def _period_days(period_start: date, period_end: date) -> int:
    days = (period_end - period_start).days
    if days <= 0:
        raise InvalidPeriod(f"empty billing period [{period_start}, {period_end})")
    return days


def proration_factor(period_start: date, period_end: date, change_on: date) -> Fraction:
    """Share of the period [start, end) left from ``change_on`` (inclusive), exactly."""
    days = _period_days(period_start, period_end)
    if not period_start <= change_on <= period_end:
        raise InvalidPeriod(f"{change_on} is outside the period [{period_start}, {period_end})")
    return Fraction((period_end - change_on).days, days)


def scale_price(unit_amount: Decimal, factor: Fraction) -> Decimal:
    """unit_amount × factor rounded half-up (half away from zero) to PRICE_PLACES, with no
    intermediate rounding: the proration of a unit price, wherever it is prorated."""
    if unit_amount < 0:
        return -scale_price(-unit_amount, factor)
    scaled = Fraction(unit_amount) * factor * 10**PRICE_PLACES
    # Both operands are non-negative, so half-up is floor(x + ½); the string keeps it exact.
    return Decimal(f"{math.floor(scaled + Fraction(1, 2))}E-{PRICE_PLACES}")


def _day(day: date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _billed_units(price: PriceSpec, quantity: Decimal) -> Decimal:
    # A flat fee is one unit whatever the quantity, as in price_lines.
    return Decimal(1) if price.model == "flat" else quantity


def _prorated_line(
    price: PriceSpec,
    quantity: Decimal,
    factor: Fraction,
    *,
    credit: bool,
    after: str,
    audit: dict[str, object],
) -> list[PricedLine]:
    units = _billed_units(price, quantity)
    if not units:
        return []
    what = price.label if price.model == "flat" else f"{_number(units)} × {price.label}"
    lead = "Unused time on" if credit else "Remaining time on"
    details: dict[str, object] = {
        "model": price.model,
        "proration": "credit" if credit else "charge",
        "units": str(units),
        "full_unit_price": str(price.unit_amount),
        **audit,
    }
    # BR-27 forbids a negative unit price, so the credit's sign goes on the quantity.
    return [
        PricedLine(
            f"{lead} {what} after {after}",
            -units if credit else units,
            scale_price(_unit_amount(price), factor),
            details,
        )
    ]


def proration_lines(
    *,
    old: PriceSpec | None,
    old_quantity: Decimal,
    new: PriceSpec | None,
    new_quantity: Decimal,
    period_start: date,
    period_end: date,
    change_on: date,
) -> list[PricedLine]:
    """Lines settling a mid-period change of a licensed (flat or per-unit) price.

    A credit for the old terms' unused time (negative quantity) and a charge for the new
    terms' remaining time; the time share is carried in the unit price (full price × days
    left / days in period, half-up to 10 places) so quantities stay whole seat counts. A
    seat-count change on the same price gets the same two lines rather than one line for the
    difference, so the customer sees both counts. ``old`` None is a start mid-period (charge
    only), ``new`` None a cancellation (credit only). A change on ``period_start`` (the new
    terms simply bill the whole period) or on ``period_end``, or to the same terms, yields
    no lines.
    """
    for price in (old, new):
        if price is not None and price.model not in LICENSED_MODELS:
            raise InvalidPrice(f"a {price.model} price is metered and cannot be prorated")
    if old is not None and new is not None and old.currency != new.currency:
        raise InvalidPrice(f"cannot prorate from {old.currency} to {new.currency}")
    _check_quantity(old_quantity)
    _check_quantity(new_quantity)
    factor = proration_factor(period_start, period_end, change_on)
    if factor in (0, 1):
        return []
    if (
        old is not None
        and old == new
        and _billed_units(old, old_quantity) == _billed_units(new, new_quantity)
    ):
        return []
    audit: dict[str, object] = {
        "days_remaining": (period_end - change_on).days,
        "days_in_period": (period_end - period_start).days,
        "period_start": period_start.isoformat(),
        "period_end": period_end.isoformat(),
        "change_on": change_on.isoformat(),
    }
    # change_on is the first day on the new terms, so the time meant is after the day before.
    after = _day(change_on - timedelta(days=1))
    lines: list[PricedLine] = []
    if old is not None:
        lines += _prorated_line(old, old_quantity, factor, credit=True, after=after, audit=audit)
    if new is not None:
        lines += _prorated_line(new, new_quantity, factor, credit=False, after=after, audit=audit)
    return lines


def chargeable_fraction(period_start: date, period_end: date, trial_end: date | None) -> Fraction:
    """Share of [start, end) billable after a trial that runs until ``trial_end`` (exclusive).

    ``trial_end`` is the first paid day. 1 without a trial or when it ended before the
    period, 0 when it lasts the whole period, else the days from trial_end on over the
    period's days.
    """
    _period_days(period_start, period_end)
    if trial_end is None:
        return Fraction(1)
    return proration_factor(period_start, period_end, min(max(trial_end, period_start), period_end))
