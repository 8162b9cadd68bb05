"""Money as integer minor units plus an ISO 4217 currency code."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    list_currencies,
)


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


@functools.lru_cache(maxsize=512)
def currency_exponent(currency: str) -> int:
    """Number of decimals of the currency's minor unit (EUR 2, JPY 0, KWD 3); cached, as
    Babel looks it up in its locale data on every call."""
    return get_currency_precision(currency.upper())


#: ISO 4217 codes that name no money (testing, "no currency", precious metals, SDR).
_NOT_MONEY = frozenset(
    {"XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XBB", "XBC", "XBD"}
)


@functools.cache
def known_currencies() -> frozenset[str]:
    """The ISO 4217 codes of money (see is_known_currency)."""
    return frozenset(list_currencies()) - _NOT_MONEY


def is_known_currency(code: object) -> bool:
    """Whether ``code`` is an upper-case ISO 4217 code of money that Babel (CLDR) knows."""
    return isinstance(code, str) and code in known_currencies()


#: Amounts a derived formatter must format exactly as Babel does before it is used.
_PROBES = (0, 1, -1, 5, 99, 100, -100, 12_345, -12_345, 1_234_567, -987_654_321, 10**15 + 7)


@functools.lru_cache(maxsize=256)
def _minor_formatter(currency: str, locale: str):
    """A fast formatter of minor units for ``currency`` in ``locale``, or None.

    Babel's ``format_currency`` parses the locale and quantizes a Decimal on every call
    (~50 µs; a list page formats dozens of amounts). The locale's standard currency pattern
    is applied here with integer arithmetic instead, and only if it gives Babel's exact text
    for a set of probe amounts; otherwise (unusual patterns) Babel is used every time.
    """
    try:
        loc = Locale.parse(locale)
        pattern = loc.currency_formats["standard"]
    except (UnknownLocaleError, ValueError, TypeError, KeyError, LookupError):
        return None
    if pattern.exp_prec or pattern.scale not in (0, 1):
        return None
    digits = currency_exponent(currency)
    unit = 10**digits
    decimal, group = get_decimal_symbol(loc), get_group_symbol(loc)
    primary, secondary = pattern.grouping
    symbol = get_currency_symbol(currency, loc)

    def affix(text: str) -> str:
        return text.replace("¤¤", currency).replace("¤", symbol)

    prefixes = (affix(pattern.prefix[0]), affix(pattern.prefix[1]))
    suffixes = (affix(pattern.suffix[0]), affix(pattern.suffix[1]))

    def fmt(minor: int) -> str:
        negative = minor < 0
        whole, fraction = divmod(-minor if negative else minor, unit)
        text = str(whole)
        size, grouped = primary, ""
        while len(text) > size:
            grouped = group + text[-size:] + grouped
            text = text[:-size]
            size = secondary
        number = text + grouped
        if digits:
            number += decimal + str(fraction).zfill(digits)
        return prefixes[negative] + number + suffixes[negative]

    for minor in _PROBES:
        expected = format_currency(Decimal(minor).scaleb(-digits), currency, locale=locale)
        if fmt(minor) != expected:
            return None
    return fmt


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in the minor unit of ``currency``."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("Money.minor must be an int")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"not an ISO 4217 code: {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, amount: Decimal | int | str, currency: str) -> Money:
        """Round a major-unit amount half-up to the currency's minor unit."""
        if isinstance(amount, float):
            raise TypeError("floats are not money")
        exponent = currency_exponent(currency)
        minor = (Decimal(amount) * (Decimal(10) ** exponent)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
        return cls(int(minor), currency)

    @property
    def exponent(self) -> int:
        return currency_exponent(self.currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.minor).scaleb(-self.exponent)

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.minor <= other.minor

    def __bool__(self) -> bool:
        return self.minor != 0

    def allocate(self, weights: list[int | Decimal]) -> list[Money]:
        """Split the amount in proportion to ``weights`` without losing a minor unit.

        Each part gets the floor of its exact share; the units left over go, one each, to
        the parts with the largest remainders (ties: earlier parts first), so the parts
        always add up to the whole.
        """
        if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ValueError("weights must be non-negative and not all zero")
        total_weight = Decimal(sum(weights))
        sign = -1 if self.minor < 0 else 1
        whole = abs(self.minor)
        shares = [Decimal(whole) * Decimal(w) / total_weight for w in weights]
        parts = [int(share) for share in shares]  # floor: shares are non-negative
        leftover = whole - sum(parts)
        by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
        for i in by_remainder[:leftover]:
            parts[i] += 1
        return [Money(sign * part, self.currency) for part in parts]

    def format(self, locale: str = "en") -> str:
        """The amount formatted for ``locale`` (e.g. "€1,234.50", "1.234,50 €"), as Babel
        formats it (through a verified fast path where the locale's pattern allows one)."""
        formatter = _minor_formatter(self.currency, locale)
        if formatter is not None:
            return formatter(self.minor)
        return format_currency(self.to_decimal(), self.currency, locale=locale)

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency}"
