"""Money: integer minor units with the currency's exponent; no floats, no mixing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.money import (
    CurrencyMismatch,
    Money,
    currency_exponent,
    is_known_currency,
    known_currencies,
)


@pytest.mark.parametrize(("code", "exponent"), [("EUR", 2), ("JPY", 0), ("KWD", 3), ("CHF", 2)])
def test_currency_exponents(code, exponent):
    assert currency_exponent(code) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("10.005", "EUR", 1001),  # half-up, not banker's rounding
        ("10.004", "EUR", 1000),
        ("-10.005", "EUR", -1001),  # half away from zero
        ("1234.5", "JPY", 1235),
        ("1.2345", "KWD", 1235),
        (7, "EUR", 700),
    ],
)
def test_from_decimal_rounds_half_up_to_the_minor_unit(amount, currency, minor):
    assert Money.from_decimal(amount, currency) == Money(minor, currency)


def test_to_decimal_is_exact():
    assert Money(1001, "EUR").to_decimal() == Decimal("10.01")
    assert Money(1235, "KWD").to_decimal() == Decimal("1.235")
    assert Money(1235, "JPY").to_decimal() == Decimal(1235)


def test_arithmetic_and_comparison():
    a, b = Money(150, "EUR"), Money(50, "EUR")
    assert a + b == Money(200, "EUR")
    assert a - b == Money(100, "EUR")
    assert -a == Money(-150, "EUR")
    assert b < a and b <= b
    assert not Money.zero("EUR") and Money(1, "EUR")


@pytest.mark.parametrize(
    "op", [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a < b, lambda a, b: a <= b]
)
def test_mixing_currencies_raises(op):
    with pytest.raises(CurrencyMismatch):
        op(Money(1, "EUR"), Money(1, "USD"))


def test_combining_with_a_number_raises():
    with pytest.raises(TypeError):
        Money(1, "EUR") + 1  # type: ignore[operator]


@pytest.mark.parametrize("bad", [1.5, True, "1"])
def test_minor_must_be_an_int(bad):
    with pytest.raises(TypeError):
        Money(bad, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["eur", "EURO", "E1R", ""])
def test_currency_must_be_iso_4217_shaped(code):
    with pytest.raises(ValueError):
        Money(1, code)


def test_floats_are_refused():
    with pytest.raises(TypeError):
        Money.from_decimal(0.1, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("money", "locale", "text"),
    [
        (Money(123450, "EUR"), "en", "€1,234.50"),
        (Money(123450, "EUR"), "de", "1.234,50\xa0€"),
        (Money(1234, "JPY"), "en", "¥1,234"),
        (Money(1234, "KWD"), "en", "KWD1.234"),  # CLDR: three decimals kept
    ],
)
def test_format_by_locale(money, locale, text):
    assert money.format(locale) == text


def test_str():
    assert str(Money(1001, "EUR")) == "10.01 EUR"


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["EUR", "JPY", "KWD"]))
def test_decimal_round_trip(minor, currency):
    money = Money(minor, currency)
    assert Money.from_decimal(money.to_decimal(), currency) == money


@pytest.mark.parametrize(
    ("minor", "weights", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # the leftover cent goes to the first tie
        (-100, [1, 1, 1], [-34, -33, -33]),
        (1000, [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")], [500, 250, 250]),
        (5, [0, 1], [0, 5]),
        (7, [3, 1], [5, 2]),  # 5.25 and 1.75: the larger remainder gets the unit
    ],
)
def test_allocate_never_loses_a_minor_unit(minor, weights, parts):
    assert [m.minor for m in Money(minor, "EUR").allocate(weights)] == parts


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_allocate_refuses_bad_weights(weights):
    with pytest.raises(ValueError):
        Money(100, "EUR").allocate(weights)


@given(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12).filter(
        lambda ws: sum(ws) > 0
    ),
)
def test_allocation_sums_to_the_whole(minor, weights):
    parts = Money(minor, "JPY").allocate(weights)
    assert sum(p.minor for p in parts) == minor
    assert all(p.currency == "JPY" for p in parts)
    exact = [Decimal(minor) * w / sum(weights) for w in weights]
    assert all(abs(p.minor - e) < 1 for p, e in zip(parts, exact, strict=True))


# The first amount in each (currency, locale) builds and verifies a formatter (a locale parse
# and a dozen Babel probes): up to ~170 ms under coverage tracing, so Hypothesis' 200 ms
# deadline made the coverage gate flaky on a busy machine. Speed is not what this tests.
@settings(deadline=None)
@given(
    minor=st.integers(min_value=-(10**16), max_value=10**16),
    currency=st.sampled_from(["EUR", "USD", "JPY", "KWD", "CHF", "INR", "GBP", "SEK", "BHD"]),
    locale=st.sampled_from(["en", "de", "fr", "en_IN", "de_CH", "nl", "sv", "ja", "ar", "hi"]),
)
def test_format_is_exactly_babels(minor, currency, locale):
    """The fast path gives Babel's text, digit for digit, in every locale it serves."""
    from babel.numbers import format_currency

    money = Money(minor, currency)
    assert money.format(locale) == format_currency(money.to_decimal(), currency, locale=locale)


def test_unknown_locale_is_refused_as_babel_refuses_it():
    from babel import UnknownLocaleError

    with pytest.raises(UnknownLocaleError):
        Money(100, "EUR").format("xx")


def test_a_locale_whose_probes_differ_is_formatted_by_babel_every_time():
    """de_CH's pattern looks simple, but Babel (2.19) groups its amounts irregularly: its
    group symbol is an apostrophe, and a pair of them is read as quotes and dropped, so
    1'234.50 and 123456789'012.50 are grouped and 1234567.50 is not. The probes reject the
    fast path, and every amount keeps Babel's own text rather than a regularly grouped one.
    (If Babel fixes this, the fast path may serve de_CH and this needs another locale.)"""
    from portal.domain.money import _minor_formatter

    assert _minor_formatter("CHF", "de_CH") is None
    assert Money(123450, "CHF").format("de_CH") == "CHF\xa01'234.50"
    assert Money(-123450, "CHF").format("de_CH") == "CHF-1'234.50"
    assert Money(123456750, "CHF").format("de_CH") == "CHF\xa01234567.50"
    assert Money(12345678901250, "CHF").format("de_CH") == "CHF\xa0123456789'012.50"


@pytest.fixture
def fresh_formatters():
    """Forget cached fast formatters before and after, so a patched locale leaves no trace."""
    from portal.domain import money

    money._minor_formatter.cache_clear()
    yield money
    money._minor_formatter.cache_clear()


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        # Scientific notation with the currency's two decimals: 1234.50 = 1.23 × 10³.
        ("¤0.###E0", "€1.23E3"),
        # A per-mille pattern scales by 1000: 1234.50 → 1,234,500.00.
        ("#,##0.00\xa0¤‰", "1,234,500.00\xa0€‰"),
    ],
)
def test_a_pattern_the_fast_path_cannot_express_is_left_to_babel(
    fresh_formatters, monkeypatch, pattern, text
):
    """No CLDR locale's standard currency pattern has an exponent or a percent/per-mille
    scale, so a locale whose pattern has one is simulated; it must be formatted by Babel,
    and be recognised from the pattern alone, without formatting probe amounts."""
    from babel import Locale
    from babel.numbers import parse_pattern

    money = fresh_formatters
    real = Locale.currency_formats.fget

    def patched(self):
        return {**real(self), "standard": parse_pattern(pattern)}

    monkeypatch.setattr(Locale, "currency_formats", property(patched))

    probes: list[object] = []
    with monkeypatch.context() as spying:
        spying.setattr(money, "format_currency", lambda *a, **k: probes.append(a) or "")
        assert money._minor_formatter("EUR", "en") is None
    assert probes == []

    assert Money(123450, "EUR").format("en") == text


@pytest.mark.parametrize(
    ("code", "known"),
    [("EUR", True), ("JPY", True), ("KWD", True), ("eur", False), ("XXX", False),
     ("XAU", False), ("ZZZ", False), ("", False), (None, False), (978, False)],
)  # fmt: skip
def test_known_currencies_are_money_babel_knows(code, known):
    assert is_known_currency(code) is known
    assert ("EUR" in known_currencies()) and ("XTS" not in known_currencies())
