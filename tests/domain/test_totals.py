"""EN 16931 totals: line nets rounded per line, VAT per category and rate, totals reconcile."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from portal.domain.money import Money
from portal.domain.totals import AllowanceCharge, LineInput, compute_totals, line_net, vat_amount


def test_two_rates_hand_computed():
    lines = [
        LineInput(Decimal("3"), Decimal("19.99"), "S", Decimal("19")),  # 59.97
        LineInput(Decimal("2.5"), Decimal("4.15"), "S", Decimal("7")),  # 10.375 → 10.38
        LineInput(Decimal("1"), Decimal("100"), "S", Decimal("19")),  # 100.00
    ]
    totals = compute_totals(lines, "EUR")
    assert [n.minor for n in totals.line_nets] == [5997, 1038, 10000]
    assert totals.lines_total == Money(17035, "EUR")
    groups = {(g.category, g.rate): (g.taxable.minor, g.tax.minor) for g in totals.vat_breakdown}
    # 159.97 × 19 % = 30.3943 → 30.39; 10.38 × 7 % = 0.7266 → 0.73
    assert groups == {("S", Decimal("19")): (15997, 3039), ("S", Decimal("7")): (1038, 73)}
    assert totals.tax == Money(3112, "EUR")
    assert totals.tax_inclusive == Money(20147, "EUR")
    assert totals.amount_due == Money(20147, "EUR")
    # Breakdown is ordered by category, then highest rate first.
    assert [g.rate for g in totals.vat_breakdown] == [Decimal("19"), Decimal("7")]


def test_allowance_and_charge_move_the_taxable_base():
    lines = [LineInput(Decimal("1"), Decimal("200"), "S", Decimal("19"))]
    totals = compute_totals(
        lines,
        "EUR",
        [
            AllowanceCharge(False, Money(2000, "EUR"), "S", Decimal("19")),
            AllowanceCharge(True, Money(500, "EUR"), "S", Decimal("19")),
        ],
        prepaid=Money(1000, "EUR"),
    )
    assert totals.allowance_total == Money(2000, "EUR")
    assert totals.charge_total == Money(500, "EUR")
    assert totals.tax_exclusive == Money(18500, "EUR")
    assert totals.tax == Money(3515, "EUR")
    assert totals.amount_due == Money(18500 + 3515 - 1000, "EUR")


def test_jpy_has_no_minor_digits():
    totals = compute_totals([LineInput(Decimal("3"), Decimal("333.5"), "O", Decimal("0"))], "JPY")
    assert totals.lines_total == Money(1001, "JPY")  # 1000.5 → 1001
    assert totals.tax == Money(0, "JPY")


def test_line_net_and_vat_round_half_up():
    assert line_net(LineInput(Decimal("1"), Decimal("0.005"), "S", Decimal(19)), "EUR").minor == 1
    assert vat_amount(Money(50, "EUR"), Decimal(1)).minor == 1  # 0.5 → 1
    assert vat_amount(Money(-50, "EUR"), Decimal(1)).minor == -1


quantities = st.decimals(min_value=-1000, max_value=100000, places=3, allow_nan=False)
prices = st.decimals(min_value=0, max_value=10000, places=4, allow_nan=False)
rates = st.sampled_from([Decimal(0), Decimal(7), Decimal("8.1"), Decimal(19), Decimal(25)])


@given(
    st.lists(st.tuples(quantities, prices, rates), min_size=1, max_size=20),
    st.sampled_from(["EUR", "JPY", "KWD"]),
)
def test_totals_always_reconcile(rows, currency):
    lines = [LineInput(q, p, "S" if r else "Z", r) for q, p, r in rows]
    totals = compute_totals(lines, currency)
    assert sum(n.minor for n in totals.line_nets) == totals.lines_total.minor
    assert sum(g.taxable.minor for g in totals.vat_breakdown) == totals.tax_exclusive.minor
    assert sum(g.tax.minor for g in totals.vat_breakdown) == totals.tax.minor
    assert totals.tax_inclusive.minor == totals.tax_exclusive.minor + totals.tax.minor
    assert totals.amount_due == totals.tax_inclusive - totals.prepaid + totals.rounding
    for group in totals.vat_breakdown:
        exact = Decimal(group.taxable.minor) * group.rate / 100
        assert abs(Decimal(group.tax.minor) - exact) <= Decimal("0.5")
