"""Pricing: models to invoice lines, month-end anchored periods, exact proration and trials."""

from __future__ import annotations

import calendar
import json
import math
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.money import Money
from portal.domain.pricing import (
    InvalidPeriod,
    InvalidPrice,
    PricedLine,
    PriceSpec,
    Tier,
    add_interval,
    amount,
    chargeable_fraction,
    lines_amount,
    next_billing_date,
    period_containing,
    price_lines,
    proration_factor,
    proration_lines,
)

D = Decimal


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


def summary(lines: list[PricedLine]) -> list[tuple[str, Decimal, Decimal]]:
    return [(line.description, line.quantity, line.unit_price) for line in lines]


FLAT = PriceSpec("flat", "EUR", unit_amount=D("49.00"), name="Pro plan")
SEATS = PriceSpec("per_unit", "EUR", unit_amount=D("12.00"), name="Seats")
API = PriceSpec(
    "graduated",
    "EUR",
    tiers=(
        Tier(D(10_000), D(0)),
        Tier(D(100_000), D("0.002")),
        Tier(None, D("0.001")),
    ),
    name="API calls",
)
BUILD = PriceSpec(
    "graduated",
    "EUR",
    tiers=(Tier(D(5), D("10.00"), D("20.00")), Tier(None, D("8.00"), D("5.00"))),
    name="Build hours",
)
VOLUME = PriceSpec(
    "volume",
    "EUR",
    tiers=(Tier(D(100), D("10.00")), Tier(D(1000), D("8.00"), D("50.00")), Tier(None, D("6.00"))),
    name="Licences",
)
STORAGE = PriceSpec("package", "EUR", unit_amount=D("5.00"), package_size=D(100), name="Storage")


# Flat and per unit ------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [D(0), D(1), D(7)])
def test_flat_fee_bills_once_whatever_the_quantity(quantity):
    lines = price_lines(FLAT, quantity)
    assert summary(lines) == [("Pro plan", D(1), D("49.00"))]
    assert lines[0].details == {"model": "flat"}
    assert amount(FLAT, quantity) == eur(4900)  # 1 × 49.00


def test_seats_per_unit():
    assert summary(price_lines(SEATS, D(8))) == [("Seats", D(8), D("12.00"))]
    assert amount(SEATS, D(8)) == eur(9600)  # 8 × 12.00 = 96.00


def test_per_unit_zero_quantity_has_no_line():
    assert price_lines(SEATS, D(0)) == []
    assert amount(SEATS, D(0)) == eur(0)


def test_per_unit_rounds_the_line_net_half_up():
    price = PriceSpec("per_unit", "EUR", unit_amount=D("0.015"))
    line = price_lines(price, D("2.5"))[0]
    assert line.description == "Units"  # unnamed prices fall back to a generic label
    assert amount(price, D("2.5")) == eur(4)  # 2.5 × 0.015 = 0.0375 → 0.04


# Graduated --------------------------------------------------------------------------------------


def test_graduated_inside_the_free_allowance():
    lines = price_lines(API, D(9_000))
    assert summary(lines) == [("API calls (1–10,000)", D(9_000), D(0))]  # free tier still shown
    assert lines[0].details == {
        "model": "graduated",
        "tier_index": 0,
        "range": "1–10,000",
        "tier_above": "0",
        "tier_up_to": "10000",
        "units": "9000",
        "flat_fee": False,
    }
    assert amount(API, D(9_000)) == eur(0)


def test_graduated_exactly_at_a_bound_does_not_reach_the_next_tier():
    assert summary(price_lines(API, D(10_000))) == [("API calls (1–10,000)", D(10_000), D(0))]


def test_graduated_one_unit_into_the_second_tier():
    lines = price_lines(API, D(10_001))
    assert summary(lines) == [
        ("API calls (1–10,000)", D(10_000), D(0)),
        ("API calls (10,001–100,000)", D(1), D("0.002")),
    ]
    # 1 × 0.002 = 0.002 rounds to 0.00 on its own line.
    assert amount(API, D(10_001)) == eur(0)


def test_graduated_across_all_tiers():
    lines = price_lines(API, D(250_000))
    assert summary(lines) == [
        ("API calls (1–10,000)", D(10_000), D(0)),  # 0.00
        ("API calls (10,001–100,000)", D(90_000), D("0.002")),  # 90,000 × 0.002 = 180.00
        ("API calls (100,001 and above)", D(150_000), D("0.001")),  # 150,000 × 0.001 = 150.00
    ]
    assert lines[2].details["tier_up_to"] is None
    assert lines[2].details["tier_index"] == 2
    assert amount(API, D(250_000)) == eur(33000)  # 0 + 180.00 + 150.00


def test_graduated_zero_quantity_reaches_no_tier():
    assert price_lines(API, D(0)) == []
    assert price_lines(BUILD, D(0)) == []  # not even the first tier's flat fee


def test_graduated_with_flat_fees():
    assert summary(price_lines(BUILD, D(3))) == [
        ("Build hours (1–5)", D(3), D("10.00")),  # 30.00
        ("Build hours (1–5), flat fee", D(1), D("20.00")),  # 20.00
    ]
    assert amount(BUILD, D(3)) == eur(5000)  # 30 + 20
    assert amount(BUILD, D(5)) == eur(7000)  # 5 × 10 + 20; the second tier is not reached
    lines = price_lines(BUILD, D(7))
    assert summary(lines) == [
        ("Build hours (1–5)", D(5), D("10.00")),  # 50.00
        ("Build hours (1–5), flat fee", D(1), D("20.00")),  # 20.00
        ("Build hours (6 and above)", D(2), D("8.00")),  # 16.00
        ("Build hours (6 and above), flat fee", D(1), D("5.00")),  # 5.00
    ]
    assert [line.details["flat_fee"] for line in lines] == [False, True, False, True]
    assert amount(BUILD, D(7)) == eur(9100)  # 50 + 20 + 16 + 5


def test_fractional_bounds_are_described_as_over_and_up_to():
    price = PriceSpec(
        "graduated",
        "EUR",
        tiers=(Tier(D("0.5"), D(0)), Tier(D("2.5"), D("1.00")), Tier(None, D("0.50"))),
        name="Transfer (GB)",
    )
    lines = price_lines(price, D("3.25"))
    assert summary(lines) == [
        ("Transfer (GB) (up to 0.5)", D("0.5"), D(0)),
        ("Transfer (GB) (over 0.5 up to 2.5)", D("2.0"), D("1.00")),  # 2.00
        ("Transfer (GB) (over 2.5)", D("0.75"), D("0.50")),  # 0.375 → 0.38
    ]
    assert amount(price, D("3.25")) == eur(238)


def test_single_unit_tier_is_described_by_its_one_unit():
    price = PriceSpec("graduated", "EUR", tiers=(Tier(D(1), D("5.00")), Tier(None, D("1.00"))))
    assert [line.description for line in price_lines(price, D(3))] == [
        "Usage (1)",
        "Usage (2 and above)",
    ]


# Volume -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "expected", "minor"),
    [
        (D(1), [("Licences (1–100)", D(1), D("10.00"))], 1000),
        # Exactly up_to stays in the tier: 100 × 10.00 = 1,000.00.
        (D(100), [("Licences (1–100)", D(100), D("10.00"))], 100000),
        # One more moves every unit to the next tier: 101 × 8.00 = 808.00, + 50.00 flat.
        (
            D(101),
            [
                ("Licences (101–1,000)", D(101), D("8.00")),
                ("Licences (101–1,000), flat fee", D(1), D("50.00")),
            ],
            85800,
        ),
        # 1,000 × 8.00 = 8,000.00 + 50.00
        (
            D(1000),
            [
                ("Licences (101–1,000)", D(1000), D("8.00")),
                ("Licences (101–1,000), flat fee", D(1), D("50.00")),
            ],
            805000,
        ),
        # 1,001 × 6.00 = 6,006.00: cheaper than 1,000 units, as volume pricing is.
        (D(1001), [("Licences (1,001 and above)", D(1001), D("6.00"))], 600600),
    ],
)
def test_volume_prices_every_unit_at_the_tier_the_total_falls_in(quantity, expected, minor):
    assert summary(price_lines(VOLUME, quantity)) == expected
    assert amount(VOLUME, quantity) == eur(minor)


def test_volume_details_name_the_applied_tier():
    details = price_lines(VOLUME, D(101))[0].details
    assert details["tier_index"] == 1
    assert details["range"] == "101–1,000"
    assert details["units"] == "101"


def test_volume_zero_quantity_has_no_line():
    assert price_lines(VOLUME, D(0)) == []


# Package ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gigabytes", "packages", "minor"),
    [
        (D(1), 1, 500),  # ceil(1/100) = 1 × 5.00
        (D(100), 1, 500),  # ceil(100/100) = 1
        (D(101), 2, 1000),  # ceil(101/100) = 2 × 5.00
        (D(250), 3, 1500),  # ceil(2.5) = 3 × 5.00
        (D("0.000001"), 1, 500),  # any usage opens a package
    ],
)
def test_package_rounds_up_to_whole_packages(gigabytes, packages, minor):
    (line,) = price_lines(STORAGE, gigabytes)
    assert line.quantity == packages
    assert line.unit_price == D("5.00")
    assert line.details == {
        "model": "package",
        "units": str(gigabytes),
        "package_size": "100",
        "packages": packages,
    }
    assert amount(STORAGE, gigabytes) == eur(minor)


def test_package_description_and_zero_usage():
    assert price_lines(STORAGE, D(250))[0].description == "Storage (250 units in packages of 100)"
    assert price_lines(STORAGE, D(0)) == []
    assert amount(STORAGE, D(0)) == eur(0)


# Other currencies -------------------------------------------------------------------------------


def test_jpy_prices_round_to_whole_yen():
    seats = PriceSpec("per_unit", "JPY", unit_amount=D(980), name="Seats")
    assert amount(seats, D(3)) == Money(2940, "JPY")  # 3 × 980
    calls = PriceSpec(
        "graduated", "JPY", tiers=(Tier(D(1000), D(0)), Tier(None, D("0.5"))), name="Calls"
    )
    # 1,000 free + 1,001 × 0.5 = 500.5 → 501 yen (half-up)
    assert amount(calls, D(2001)) == Money(501, "JPY")
    storage = PriceSpec("package", "JPY", unit_amount=D(300), package_size=D(50))
    assert amount(storage, D(120)) == Money(900, "JPY")  # ceil(120/50) = 3 × 300


def test_lines_amount_rounds_each_line():
    lines = [
        PricedLine("a", D(1), D("0.004"), {}),
        PricedLine("b", D(1), D("0.004"), {}),
    ]
    # 0.004 → 0.00 twice; summing first would give 0.008 → 0.01.
    assert lines_amount(lines, "EUR") == eur(0)
    assert lines_amount([], "KWD") == Money(0, "KWD")


# Validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "tiered", "currency": "EUR", "unit_amount": D(1)},
        {"model": "flat", "currency": "eur", "unit_amount": D(1)},
        {"model": "flat", "currency": "EUR"},
        {"model": "per_unit", "currency": "EUR", "unit_amount": D(-1)},
        {"model": "per_unit", "currency": "EUR", "unit_amount": D("NaN")},
        {"model": "per_unit", "currency": "EUR", "unit_amount": D("Infinity")},
        {"model": "per_unit", "currency": "EUR", "unit_amount": D("0.00000000001")},
        {"model": "per_unit", "currency": "EUR", "unit_amount": D(1), "tiers": (Tier(None, D(1)),)},
        {"model": "per_unit", "currency": "EUR", "unit_amount": D(1), "package_size": D(10)},
        {"model": "graduated", "currency": "EUR"},
        {"model": "volume", "currency": "EUR", "unit_amount": D(1), "tiers": (Tier(None, D(1)),)},
        {"model": "graduated", "currency": "EUR", "tiers": (Tier(D(10), D(1)),)},
        {
            "model": "graduated",
            "currency": "EUR",
            "tiers": (Tier(None, D(1)), Tier(None, D(1))),
        },
        {
            "model": "volume",
            "currency": "EUR",
            "tiers": (Tier(D(10), D(1)), Tier(D(10), D(1)), Tier(None, D(1))),
        },
        {
            "model": "volume",
            "currency": "EUR",
            "tiers": (Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1))),
        },
        {"model": "graduated", "currency": "EUR", "tiers": (Tier(D(0), D(1)), Tier(None, D(1)))},
        {"model": "package", "currency": "EUR", "unit_amount": D(5)},
        {"model": "package", "currency": "EUR", "unit_amount": D(5), "package_size": D(0)},
        {
            "model": "package",
            "currency": "EUR",
            "unit_amount": D(5),
            "package_size": D("0.0000001"),
        },
        {"model": "package", "currency": "EUR", "package_size": D(10)},
    ],
)
def test_invalid_price_specs_are_refused(kwargs):
    with pytest.raises(InvalidPrice):
        PriceSpec(**kwargs)


@pytest.mark.parametrize(
    "args",
    [
        (D(-1), D(1)),
        (D(1), D(-1)),
        (None, D(1), D(-1)),
        (D("1.0000001"), D(1)),
        (None, D("0.12345678901")),
    ],
)
def test_invalid_tiers_are_refused(args):
    with pytest.raises(InvalidPrice):
        Tier(*args)


def test_floats_are_refused():
    with pytest.raises(TypeError):
        Tier(None, 0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        price_lines(SEATS, 2.0)  # type: ignore[arg-type]


def test_trailing_zeros_do_not_count_as_places():
    price = PriceSpec("per_unit", "EUR", unit_amount=D("1.500000000000000"))
    assert price_lines(price, D("3.00000000"))[0].quantity == D(3)


def test_tiers_given_as_a_list_are_stored_as_a_tuple():
    price = PriceSpec("volume", "EUR", tiers=[Tier(None, D(1))])  # type: ignore[arg-type]
    assert price.tiers == (Tier(None, D(1)),)
    assert hash(price) == hash(PriceSpec("volume", "EUR", tiers=(Tier(None, D(1)),)))


@pytest.mark.parametrize("quantity", [D(-1), D("-0.000001"), D("0.0000001")])
@pytest.mark.parametrize("price", [FLAT, SEATS, API, VOLUME, STORAGE])
def test_negative_or_over_precise_quantities_are_refused(price, quantity):
    with pytest.raises(InvalidPrice):
        price_lines(price, quantity)


# Billing periods --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "interval", "count", "expected"),
    [
        (date(2026, 1, 31), "month", 1, date(2026, 2, 28)),  # clamped to February's end
        (date(2024, 1, 31), "month", 1, date(2024, 2, 29)),  # leap year
        (date(2026, 1, 31), "month", 2, date(2026, 3, 31)),  # from Jan 31, not from Feb 28
        (date(2026, 1, 31), "month", 3, date(2026, 4, 30)),
        (date(2026, 11, 15), "month", 2, date(2027, 1, 15)),  # across the year
        (date(2026, 3, 31), "month", -1, date(2026, 2, 28)),  # backwards
        (date(2024, 2, 29), "year", 1, date(2025, 2, 28)),
        (date(2024, 2, 29), "year", 4, date(2028, 2, 29)),
        (date(2026, 5, 10), "month", 0, date(2026, 5, 10)),
    ],
)
def test_add_interval_clamps_to_month_end(day, interval, count, expected):
    assert add_interval(day, interval, count) == expected


def test_add_interval_refuses_unknown_intervals_and_counts():
    with pytest.raises(InvalidPeriod):
        add_interval(date(2026, 1, 1), "week", 1)
    with pytest.raises(TypeError):
        add_interval(date(2026, 1, 1), "month", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        add_interval(date(2026, 1, 1), "month", True)


@pytest.mark.parametrize(
    ("on", "period"),
    [
        (date(2026, 1, 31), (date(2026, 1, 31), date(2026, 2, 28))),  # the anchor day itself
        (date(2026, 2, 27), (date(2026, 1, 31), date(2026, 2, 28))),
        (date(2026, 2, 28), (date(2026, 2, 28), date(2026, 3, 31))),  # end is exclusive
        (date(2026, 3, 15), (date(2026, 2, 28), date(2026, 3, 31))),
        (date(2026, 3, 31), (date(2026, 3, 31), date(2026, 4, 30))),  # back to the 31st: no drift
        (date(2026, 4, 30), (date(2026, 4, 30), date(2026, 5, 31))),
        (date(2027, 2, 1), (date(2027, 1, 31), date(2027, 2, 28))),
    ],
)
def test_monthly_periods_anchor_on_jan_31(on, period):
    assert period_containing(date(2026, 1, 31), "month", 1, on) == period
    assert next_billing_date(date(2026, 1, 31), "month", 1, on) == period[1]


def test_monthly_anchor_on_leap_day():
    anchor = date(2024, 2, 29)
    assert period_containing(anchor, "month", 1, date(2024, 3, 1)) == (
        date(2024, 2, 29),
        date(2024, 3, 29),
    )
    # A year on, February has 28 days: that period starts on the 28th and ends on Mar 29.
    assert period_containing(anchor, "month", 1, date(2025, 2, 28)) == (
        date(2025, 2, 28),
        date(2025, 3, 29),
    )
    assert period_containing(anchor, "month", 1, date(2025, 2, 27)) == (
        date(2025, 1, 29),
        date(2025, 2, 28),
    )


def test_yearly_anchor_on_leap_day():
    anchor = date(2024, 2, 29)
    assert period_containing(anchor, "year", 1, date(2025, 2, 27)) == (
        date(2024, 2, 29),
        date(2025, 2, 28),
    )
    assert period_containing(anchor, "year", 1, date(2027, 3, 1)) == (
        date(2027, 2, 28),
        date(2028, 2, 29),  # back on the 29th in the next leap year
    )
    assert next_billing_date(anchor, "year", 1, date(2028, 2, 29)) == date(2029, 2, 28)


def test_quarterly_periods():
    anchor = date(2026, 1, 31)
    assert period_containing(anchor, "month", 3, date(2026, 5, 1)) == (
        date(2026, 4, 30),
        date(2026, 7, 31),
    )
    # In the start month of a period but before its (clamped) start day.
    assert period_containing(anchor, "month", 3, date(2026, 4, 29)) == (
        date(2026, 1, 31),
        date(2026, 4, 30),
    )


def test_period_containing_refuses_bad_input():
    with pytest.raises(InvalidPeriod):
        period_containing(date(2026, 1, 1), "month", 0, date(2026, 2, 1))
    with pytest.raises(InvalidPeriod):
        period_containing(date(2026, 1, 1), "month", -1, date(2026, 2, 1))
    with pytest.raises(InvalidPeriod):
        period_containing(date(2026, 1, 1), "month", 1, date(2025, 12, 31))
    with pytest.raises(InvalidPeriod):
        next_billing_date(date(2026, 1, 1), "day", 1, date(2026, 2, 1))


# Proration --------------------------------------------------------------------------------------

NOV_START, NOV_END = date(2026, 11, 1), date(2026, 12, 1)  # 30 days


def prorate(old, old_quantity, new, new_quantity, change_on, start=NOV_START, end=NOV_END):
    return proration_lines(
        old=old,
        old_quantity=old_quantity,
        new=new,
        new_quantity=new_quantity,
        period_start=start,
        period_end=end,
        change_on=change_on,
    )


def test_proration_factor_counts_days_exactly():
    assert proration_factor(NOV_START, NOV_END, date(2026, 11, 16)) == Fraction(15, 30)
    assert proration_factor(NOV_START, NOV_END, NOV_START) == 1
    assert proration_factor(NOV_START, NOV_END, NOV_END) == 0
    # 31-day month: 10 days left of 31, a share no Decimal represents exactly.
    assert proration_factor(date(2026, 12, 1), date(2027, 1, 1), date(2026, 12, 22)) == Fraction(
        10, 31
    )


def test_proration_factor_refuses_dates_outside_the_period():
    with pytest.raises(InvalidPeriod):
        proration_factor(NOV_START, NOV_END, date(2026, 10, 31))
    with pytest.raises(InvalidPeriod):
        proration_factor(NOV_START, NOV_END, date(2026, 12, 2))
    with pytest.raises(InvalidPeriod):
        proration_factor(NOV_END, NOV_START, NOV_END)
    with pytest.raises(InvalidPeriod):
        proration_factor(NOV_START, NOV_START, NOV_START)


def test_seat_upgrade_mid_month():
    lines = prorate(SEATS, D(5), SEATS, D(8), date(2026, 11, 16))
    # 15 of 30 days left: 12.00 × 15/30 = 6.0000000000 per seat.
    assert summary(lines) == [
        ("Unused time on 5 × Seats after 15 Nov 2026", D(-5), D("6.0000000000")),  # -30.00
        ("Remaining time on 8 × Seats after 15 Nov 2026", D(8), D("6.0000000000")),  # 48.00
    ]
    assert lines_amount(lines, "EUR") == eur(1800)  # 3 more seats × 6.00
    credit, charge = lines
    assert credit.details == {
        "model": "per_unit",
        "proration": "credit",
        "units": "5",
        "full_unit_price": "12.00",
        "days_remaining": 15,
        "days_in_period": 30,
        "period_start": "2026-11-01",
        "period_end": "2026-12-01",
        "change_on": "2026-11-16",
    }
    assert charge.details["proration"] == "charge"
    assert charge.details["units"] == "8"


def test_seat_downgrade_mid_month():
    lines = prorate(SEATS, D(8), SEATS, D(5), date(2026, 11, 16))
    assert summary(lines) == [
        ("Unused time on 8 × Seats after 15 Nov 2026", D(-8), D("6.0000000000")),  # -48.00
        ("Remaining time on 5 × Seats after 15 Nov 2026", D(5), D("6.0000000000")),  # 30.00
    ]
    assert lines_amount(lines, "EUR") == eur(-1800)


def test_plan_upgrade_with_a_repeating_fraction():
    pro = PriceSpec("flat", "EUR", unit_amount=D("99.00"), name="Pro plan")
    basic = PriceSpec("flat", "EUR", unit_amount=D("49.00"), name="Basic plan")
    lines = prorate(basic, D(1), pro, D(1), date(2026, 11, 11))
    # 20 of 30 days left: 49.00 × 2/3 = 32.666666666… → 32.6666666667; 99.00 × 2/3 = 66.
    assert summary(lines) == [
        ("Unused time on Basic plan after 10 Nov 2026", D(-1), D("32.6666666667")),  # -32.67
        ("Remaining time on Pro plan after 10 Nov 2026", D(1), D("66.0000000000")),  # 66.00
    ]
    assert lines_amount(lines, "EUR") == eur(3333)  # -32.67 + 66.00


def test_plan_downgrade_from_seats_to_flat():
    lines = prorate(SEATS, D(5), FLAT, D(0), date(2026, 11, 16))
    assert summary(lines) == [
        ("Unused time on 5 × Seats after 15 Nov 2026", D(-5), D("6.0000000000")),  # -30.00
        ("Remaining time on Pro plan after 15 Nov 2026", D(1), D("24.5000000000")),  # 24.50
    ]
    assert lines_amount(lines, "EUR") == eur(-550)


def test_start_and_cancel_mid_period():
    start = prorate(None, D(0), SEATS, D(3), date(2026, 11, 21))
    # 10 of 30 days: 12.00 / 3 = 4.00 per seat × 3 = 12.00
    assert summary(start) == [
        ("Remaining time on 3 × Seats after 20 Nov 2026", D(3), D("4.0000000000"))
    ]
    cancel = prorate(SEATS, D(3), None, D(0), date(2026, 11, 21))
    assert summary(cancel) == [
        ("Unused time on 3 × Seats after 20 Nov 2026", D(-3), D("4.0000000000"))
    ]
    assert lines_amount(start + cancel, "EUR") == eur(0)


def test_proration_in_jpy():
    plan = PriceSpec("flat", "JPY", unit_amount=D(980), name="Plan")
    lines = prorate(None, D(0), plan, D(1), date(2026, 11, 15))
    # 16 of 30 days: 980 × 16/30 = 522.666… → 522.6666666667 → 523 yen
    assert summary(lines) == [
        ("Remaining time on Plan after 14 Nov 2026", D(1), D("522.6666666667"))
    ]
    assert lines_amount(lines, "JPY") == Money(523, "JPY")


@pytest.mark.parametrize(
    ("old", "old_quantity", "new", "new_quantity", "change_on"),
    [
        (SEATS, D(5), SEATS, D(8), NOV_START),  # on the period start: the new terms bill it all
        (SEATS, D(5), SEATS, D(8), NOV_END),  # nothing left of the period
        (SEATS, D(5), SEATS, D(5), date(2026, 11, 16)),  # same terms
        (FLAT, D(1), FLAT, D(3), date(2026, 11, 16)),  # a flat fee ignores the quantity
        (SEATS, D(0), None, D(0), date(2026, 11, 16)),  # nothing to credit
        (None, D(0), None, D(0), date(2026, 11, 16)),
    ],
)
def test_proration_without_lines(old, old_quantity, new, new_quantity, change_on):
    assert prorate(old, old_quantity, new, new_quantity, change_on) == []


def test_proration_from_zero_seats_charges_only():
    lines = prorate(SEATS, D(0), SEATS, D(2), date(2026, 11, 16))
    assert summary(lines) == [
        ("Remaining time on 2 × Seats after 15 Nov 2026", D(2), D("6.0000000000"))
    ]


@pytest.mark.parametrize("metered", [API, VOLUME, STORAGE])
def test_metered_prices_cannot_be_prorated(metered):
    with pytest.raises(InvalidPrice):
        prorate(metered, D(1), SEATS, D(1), date(2026, 11, 16))
    with pytest.raises(InvalidPrice):
        prorate(SEATS, D(1), metered, D(1), date(2026, 11, 16))


def test_proration_refuses_mixed_currencies_and_bad_quantities():
    usd = PriceSpec("per_unit", "USD", unit_amount=D("12.00"))
    with pytest.raises(InvalidPrice):
        prorate(SEATS, D(1), usd, D(1), date(2026, 11, 16))
    with pytest.raises(InvalidPrice):
        prorate(SEATS, D(-1), SEATS, D(1), date(2026, 11, 16))
    with pytest.raises(InvalidPrice):
        prorate(SEATS, D(1), SEATS, D(-1), date(2026, 11, 16))
    with pytest.raises(InvalidPeriod):
        prorate(SEATS, D(1), SEATS, D(2), date(2026, 12, 16))


# Trials -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trial_end", "fraction"),
    [
        (None, Fraction(1)),  # no trial
        (date(2026, 10, 20), Fraction(1)),  # ended before the period
        (NOV_START, Fraction(1)),  # first paid day is the period's first day
        (date(2026, 11, 11), Fraction(20, 30)),  # Nov 11–30 paid: 20 of 30 days
        (date(2026, 11, 30), Fraction(1, 30)),
        (NOV_END, Fraction(0)),  # covers the whole period
        (date(2026, 12, 15), Fraction(0)),
    ],
)
def test_chargeable_fraction(trial_end, fraction):
    assert chargeable_fraction(NOV_START, NOV_END, trial_end) == fraction


def test_trial_ending_mid_period_charges_the_rest():
    trial_end = date(2026, 11, 11)
    fraction = chargeable_fraction(NOV_START, NOV_END, trial_end)
    assert fraction == Fraction(2, 3)  # Nov 11–30: 20 of 30 days
    # Billed as a start on the first paid day, the remaining-time charge is the same share.
    lines = prorate(None, D(0), FLAT, D(1), trial_end)
    assert lines[0].unit_price == D("32.6666666667")  # 49.00 × 20/30
    assert lines_amount(lines, "EUR") == eur(3267)


def test_chargeable_fraction_refuses_an_empty_period():
    with pytest.raises(InvalidPeriod):
        chargeable_fraction(NOV_START, NOV_START, None)


# Properties -------------------------------------------------------------------------------------

quantities = st.decimals(min_value=0, max_value=10**7, places=6, allow_nan=False)
prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False)
fees = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False)
currencies = st.sampled_from(["EUR", "JPY", "KWD"])


@st.composite
def tier_tuples(draw):
    bounds = sorted(
        set(
            draw(
                st.lists(
                    st.decimals(min_value=D("0.000001"), max_value=10**6, places=6),
                    max_size=4,
                )
            )
        )
    )
    return tuple(Tier(bound, draw(prices), draw(fees)) for bound in [*bounds, None])


@st.composite
def price_specs(draw):
    model = draw(st.sampled_from(["flat", "per_unit", "graduated", "volume", "package"]))
    currency = draw(currencies)
    if model in ("graduated", "volume"):
        return PriceSpec(model, currency, tiers=draw(tier_tuples()))
    size = draw(st.decimals(min_value=D("0.000001"), max_value=1000, places=6))
    return PriceSpec(
        model,
        currency,
        unit_amount=draw(prices),
        package_size=size if model == "package" else None,
    )


@given(tier_tuples(), currencies, quantities, quantities)
def test_graduated_amount_is_monotonic(tiers, currency, a, b):
    price = PriceSpec("graduated", currency, tiers=tiers)
    low, high = sorted((a, b))
    assert amount(price, low) <= amount(price, high)


@given(prices, fees, currencies, quantities)
def test_volume_and_graduated_agree_with_one_tier(unit, fee, currency, quantity):
    tiers = (Tier(None, unit, fee),)
    graduated = PriceSpec("graduated", currency, tiers=tiers)
    volume = PriceSpec("volume", currency, tiers=tiers)
    assert summary(price_lines(graduated, quantity)) == summary(price_lines(volume, quantity))
    assert amount(graduated, quantity) == amount(volume, quantity)


@given(
    prices,
    st.decimals(min_value=D("0.000001"), max_value=1000, places=6),
    currencies,
    quantities,
)
def test_package_amount_is_whole_packages_times_price(unit, size, currency, quantity):
    price = PriceSpec("package", currency, unit_amount=unit, package_size=size)
    packages = math.ceil(Fraction(quantity) / Fraction(size))
    assert amount(price, quantity) == Money.from_decimal(packages * unit, currency)


@given(price_specs(), quantities)
def test_lines_fit_the_stored_scales_and_details_are_json(price, quantity):
    for line in price_lines(price, quantity):
        assert line.quantity == line.quantity.quantize(D("0.000001"))
        assert line.unit_price == line.unit_price.quantize(D("0.0000000001"))
        assert line.unit_price >= 0  # BR-27
        json.dumps(line.details)


periods = st.tuples(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=0, max_value=400),
).map(lambda t: (t[0], t[0] + timedelta(days=t[1]), t[0] + timedelta(days=min(t[1], t[2]))))
licensed = st.builds(
    PriceSpec,
    st.sampled_from(["flat", "per_unit"]),
    st.just("EUR"),
    unit_amount=prices,
    name=st.sampled_from(["", "Seats"]),
)


@given(periods)
def test_proration_factor_is_between_0_and_1(period):
    start, end, change_on = period
    factor = proration_factor(start, end, change_on)
    assert 0 <= factor <= 1
    assert chargeable_fraction(start, end, change_on) == factor


@given(licensed, st.integers(min_value=0, max_value=10_000).map(D), periods)
def test_credit_and_charge_for_the_same_terms_cancel(price, quantity, period):
    start, end, change_on = period
    common = {"period_start": start, "period_end": end, "change_on": change_on}
    credit = proration_lines(
        old=price, old_quantity=quantity, new=None, new_quantity=D(0), **common
    )
    charge = proration_lines(
        old=None, old_quantity=D(0), new=price, new_quantity=quantity, **common
    )
    assert lines_amount(credit + charge, "EUR") == eur(0)
    assert [line.quantity for line in credit] == [-line.quantity for line in charge]
    for line in credit + charge:
        assert line.unit_price == line.unit_price.quantize(D("0.0000000001"))
        json.dumps(line.details)
    same = proration_lines(
        old=price, old_quantity=quantity, new=price, new_quantity=quantity, **common
    )
    assert same == []


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    st.sampled_from(["month", "year"]),
    st.integers(min_value=1, max_value=24),
    st.integers(min_value=0, max_value=5000),
)
def test_periods_tile_the_timeline_from_the_anchor(anchor, interval, count, offset):
    on = anchor + timedelta(days=offset)
    start, end = period_containing(anchor, interval, count, on)
    assert start <= on < end
    # The next period starts exactly where this one ends: no gap, no overlap, no drift.
    assert period_containing(anchor, interval, count, end)[0] == end
    assert next_billing_date(anchor, interval, count, on) == end
    for day in (start, end):  # each on the anchor's day, or its month's last day if shorter
        assert day.day == min(anchor.day, calendar.monthrange(day.year, day.month)[1])


def test_scale_price_rounds_half_away_from_zero_without_intermediate_rounding():
    from fractions import Fraction

    from portal.domain.pricing import scale_price

    assert scale_price(Decimal("0.00000000015"), Fraction(1)) == Decimal("0.0000000002")
    assert scale_price(Decimal("-0.00000000015"), Fraction(1)) == Decimal("-0.0000000002")
    assert scale_price(Decimal("30"), Fraction(17, 31)) == Decimal("16.4516129032")
    assert scale_price(Decimal("-30"), Fraction(17, 31)) == Decimal("-16.4516129032")
