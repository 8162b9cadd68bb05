"""Geometry of the 12-month spend chart, drawn as SVG by the template."""

from __future__ import annotations

from dataclasses import dataclass

from babel.dates import format_date
from babel.numbers import format_compact_currency

from portal.invoices.spend import MonthSpend

WIDTH, HEIGHT = 720, 240
TOP, BOTTOM, SIDE = 28, 28, 8  # room for value labels above and month labels below


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    center: int
    month: str  # "Nov", localized
    month_long: str  # "November 2026"
    value_short: str  # "€1.2K"
    value: str  # "€1,234.56"


@dataclass(frozen=True)
class SpendChart:
    width: int
    height: int
    baseline: int
    bars: list[Bar]
    total: str


def spend_chart(spend: list[MonthSpend], locale: str) -> SpendChart:
    """Bars scaled to the largest month; every value also as text (no mouse needed)."""
    slot = (WIDTH - 2 * SIDE) // max(len(spend), 1)
    bar_width = slot * 6 // 10
    plot_height = HEIGHT - TOP - BOTTOM
    largest = max((m.amount.minor for m in spend), default=0) or 1
    bars = []
    for index, month in enumerate(spend):
        height = month.amount.minor * plot_height // largest if month.amount.minor > 0 else 0
        x = SIDE + index * slot + (slot - bar_width) // 2
        bars.append(
            Bar(
                x=x,
                y=HEIGHT - BOTTOM - height,
                width=bar_width,
                height=max(height, 1),
                center=x + bar_width // 2,
                month=format_date(month.month, "MMM", locale=locale),
                month_long=format_date(month.month, "MMMM y", locale=locale),
                value_short=format_compact_currency(
                    month.amount.to_decimal(),
                    month.amount.currency,
                    locale=locale,
                    fraction_digits=1,
                ),
                value=month.amount.format(locale),
            )
        )
    total = sum((m.amount for m in spend[1:]), spend[0].amount) if spend else None
    return SpendChart(WIDTH, HEIGHT, HEIGHT - BOTTOM, bars, total.format(locale) if total else "")
