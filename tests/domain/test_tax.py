"""VAT: dated rates, EU membership, VAT-ID syntax and the category/rate decision."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain import tax
from portal.domain.tax import (
    COVERAGE_START,
    EU_MEMBERS,
    RATE_KINDS,
    RATES,
    Party,
    UnknownRate,
    VatCategory,
    VatDecision,
    decide_vat,
    is_eu,
    location_tax,
    normalize_vat_id,
    rate,
    rates_on,
    vat_id_country,
    vat_id_is_valid,
)

D = Decimal
COVERED = sorted(EU_MEMBERS | {"CH", "NO", "GB"})
DAY = date(2026, 1, 1)

# Valid VAT IDs (syntax and check digits, checked with python-stdnum).
DE_ID, FR_ID, AT_ID, NL_ID, EL_ID = (
    "DE136695976",
    "FR40303265045",
    "ATU13585627",
    "NL004495445B01",
    "EL094259216",
)
CH_ID, NO_ID, GB_ID = "CHE-116.281.710 MWST", "NO 995 525 828 MVA", "GB980780684"


# --- Categories ----------------------------------------------------------------------------


def test_categories_are_the_uncl5305_codes():
    assert [c.value for c in VatCategory] == ["S", "Z", "E", "AE", "K", "G", "O"]
    assert VatCategory.REVERSE_CHARGE == "AE"


def test_categories_match_the_invoice_model():
    from portal.invoices import states

    assert {c.name: c.value for c in VatCategory} == {c.name: c.value for c in states.VatCategory}


# --- Rates by date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "on", "kind", "expected"),
    [
        # Germany's temporary cut, both ends and the days around them.
        ("DE", date(2020, 6, 30), "standard", "19"),
        ("DE", date(2020, 7, 1), "standard", "16"),
        ("DE", date(2020, 12, 31), "standard", "16"),
        ("DE", date(2021, 1, 1), "standard", "19"),
        ("DE", date(2020, 6, 30), "reduced", "7"),
        ("DE", date(2020, 7, 1), "reduced", "5"),
        ("DE", date(2021, 1, 1), "reduced", "7"),
        ("DE", DAY, "standard", "19"),
        # Ireland's 21 %.
        ("IE", date(2020, 8, 31), "standard", "23"),
        ("IE", date(2020, 9, 1), "standard", "21"),
        ("IE", date(2021, 2, 28), "standard", "21"),
        ("IE", date(2021, 3, 1), "standard", "23"),
        # Estonia 20 → 22 → 24 %.
        ("EE", date(2023, 12, 31), "standard", "20"),
        ("EE", date(2024, 1, 1), "standard", "22"),
        ("EE", date(2025, 6, 30), "standard", "22"),
        ("EE", date(2025, 7, 1), "standard", "24"),
        ("EE", date(2024, 12, 31), "reduced", "9"),
        ("EE", date(2025, 1, 1), "reduced", "13"),
        ("EE", date(2024, 12, 31), "reduced_2", "5"),
        ("EE", date(2025, 1, 1), "reduced_2", "9"),
        # Finland 24 → 25.5 %, reduced 14 → 13.5 %.
        ("FI", date(2024, 8, 31), "standard", "24"),
        ("FI", date(2024, 9, 1), "standard", "25.5"),
        ("FI", date(2025, 12, 31), "reduced", "14"),
        ("FI", date(2026, 1, 1), "reduced", "13.5"),
        # Slovakia 20 → 23 %, 10 → 19 %.
        ("SK", date(2024, 12, 31), "standard", "20"),
        ("SK", date(2025, 1, 1), "standard", "23"),
        ("SK", date(2024, 12, 31), "reduced", "10"),
        ("SK", date(2025, 1, 1), "reduced", "19"),
        # Switzerland 7.7 → 8.1 %, 2.5 → 2.6 %, 3.7 → 3.8 %.
        ("CH", date(2023, 12, 31), "standard", "7.7"),
        ("CH", date(2024, 1, 1), "standard", "8.1"),
        ("CH", date(2023, 12, 31), "reduced", "2.5"),
        ("CH", date(2024, 1, 1), "reduced", "2.6"),
        ("CH", date(2023, 12, 31), "accommodation", "3.7"),
        ("CH", date(2024, 1, 1), "accommodation", "3.8"),
        # Luxembourg's 2023.
        ("LU", date(2022, 12, 31), "standard", "17"),
        ("LU", date(2023, 1, 1), "standard", "16"),
        ("LU", date(2023, 12, 31), "standard", "16"),
        ("LU", date(2024, 1, 1), "standard", "17"),
        ("LU", date(2023, 6, 1), "parking", "13"),
        ("LU", date(2023, 6, 1), "super_reduced", "3"),
        # Romania 19 → 21 %, 9 % and 5 % → 11 %.
        ("RO", date(2025, 7, 31), "standard", "19"),
        ("RO", date(2025, 8, 1), "standard", "21"),
        ("RO", date(2025, 8, 1), "reduced", "11"),
        # Lithuania 9 → 12 %.
        ("LT", date(2025, 12, 31), "reduced", "9"),
        ("LT", date(2026, 1, 1), "reduced", "12"),
        # Norway's temporary 6 %.
        ("NO", date(2020, 3, 31), "reduced_2", "12"),
        ("NO", date(2020, 4, 1), "reduced_2", "6"),
        ("NO", date(2021, 9, 30), "reduced_2", "6"),
        ("NO", date(2021, 10, 1), "reduced_2", "12"),
        # Austria's 4.9 % for basic foodstuffs.
        ("AT", date(2026, 7, 1), "super_reduced", "4.9"),
        ("GB", DAY, "standard", "20"),
        ("FR", DAY, "standard", "20"),
        ("FR", DAY, "super_reduced", "2.1"),
        ("GR", DAY, "standard", "24"),
        ("HU", DAY, "standard", "27"),
        ("MT", date(2024, 1, 1), "reduced_3", "5"),
    ],
)
def test_rate_is_chosen_by_date(country, on, kind, expected):
    assert rate(country, on, kind) == D(expected)


def test_rate_defaults_to_standard_and_is_a_decimal():
    assert rate("FI", DAY) == D("25.5")
    assert type(rate("FI", DAY)) is Decimal


def test_czech_reduced_rates_merged_in_2024():
    assert rates_on("CZ", date(2023, 12, 31)) == {
        "standard": D(21),
        "reduced": D(15),
        "reduced_2": D(10),
    }
    assert rates_on("CZ", date(2024, 1, 1)) == {"standard": D(21), "reduced": D(12)}


def test_romanian_five_percent_ends_with_the_merger():
    assert rates_on("RO", date(2025, 7, 31))["reduced_2"] == D(5)
    assert "reduced_2" not in rates_on("RO", date(2025, 8, 1))


def test_austria_gains_a_super_reduced_rate_in_july_2026():
    assert "super_reduced" not in rates_on("AT", date(2026, 6, 30))
    assert rates_on("AT", date(2026, 7, 1))["super_reduced"] == D("4.9")


def test_denmark_has_one_rate():
    assert rates_on("DK", DAY) == {"standard": D(25)}


@pytest.mark.parametrize("country", COVERED)
def test_every_covered_country_has_a_plausible_standard_rate_in_2026(country):
    assert D(8) <= rate(country, DAY) <= D(27)
    # The EU floor for the standard rate is 15 % (Art. 97).
    if country in EU_MEMBERS:
        assert rate(country, DAY) >= D(15)


@pytest.mark.parametrize(
    ("country", "on", "kind"),
    [
        ("US", DAY, "standard"),  # not in the table
        ("DE", DAY, "parking"),  # kind the country does not have
        ("DE", DAY, "Standard"),  # kinds are case-sensitive names
        ("DE", date(2019, 12, 31), "standard"),  # before the table starts
        ("CZ", date(2024, 1, 1), "reduced_2"),  # kind that ended
    ],
)
def test_unknown_rate(country, on, kind):
    with pytest.raises(UnknownRate):
        rate(country, on, kind)


def test_unknown_rate_is_a_lookup_error():
    assert issubclass(UnknownRate, LookupError)
    with pytest.raises(LookupError, match="no VAT rates known for US"):
        rates_on("US", DAY)
    with pytest.raises(LookupError, match="has standard, reduced"):
        rate("DE", DAY, "parking")


@pytest.mark.parametrize("country", ["de", "DEU", "D", "", "EL", "UK", "XX", "EU", None, 49])
def test_country_codes_must_be_upper_case_iso(country):
    with pytest.raises(ValueError):
        rates_on(country, DAY)


def test_greece_hint_for_el():
    with pytest.raises(ValueError, match="'GR'"):
        is_eu("EL", DAY)


def test_kosovo_is_accepted_though_user_assigned():
    assert not is_eu("XK", DAY)


@pytest.mark.parametrize("on", [datetime(2026, 1, 1, 12, 0), "2026-01-01", None])
def test_the_day_must_be_a_date(on):
    with pytest.raises(TypeError):
        rates_on("DE", on)


# --- The rate data itself --------------------------------------------------------------------


def test_rate_data_has_no_overlapping_periods():
    periods = defaultdict(list)
    for record in RATES:
        periods[(record.country, record.kind)].append(record)
    for key, records in periods.items():
        records.sort(key=lambda r: r.valid_from)
        for earlier, later in zip(records, records[1:], strict=False):
            assert earlier.valid_to is not None, key
            assert earlier.valid_to < later.valid_from, key


def test_rate_data_is_well_formed():
    for record in RATES:
        assert record.country in COVERED
        assert record.kind in RATE_KINDS
        assert type(record.rate) is Decimal and D(0) < record.rate < D(30)
        assert record.valid_from >= COVERAGE_START
        assert record.valid_to is None or record.valid_from <= record.valid_to
    assert {r.country for r in RATES} == set(COVERED)


def test_rates_on_every_change_day_are_ordered_by_kind():
    # "reduced", "reduced_2", "reduced_3" are highest first and at least 5 %; "super_reduced"
    # is below 5 %, on every day where some rate of the country changes.
    days = {r.valid_from for r in RATES} | {DAY}
    for country in COVERED:
        for on in days:
            rates = rates_on(country, on)
            reduced = [rates[k] for k in ("reduced", "reduced_2", "reduced_3") if k in rates]
            assert reduced == sorted(reduced, reverse=True), (country, on)
            assert all(D(2) <= r < rates["standard"] for r in reduced), (country, on)
            if country in EU_MEMBERS:
                assert all(r >= D(5) for r in reduced), (country, on)
                assert rates.get("super_reduced", D(0)) < D(5), (country, on)


def test_records_are_frozen():
    with pytest.raises(AttributeError):
        RATES[0].rate = D(1)  # type: ignore[misc]


# --- EU membership ---------------------------------------------------------------------------


def test_eu_members():
    assert len(EU_MEMBERS) == 27
    assert "GR" in EU_MEMBERS and "EL" not in EU_MEMBERS
    assert "GB" not in EU_MEMBERS and "CH" not in EU_MEMBERS and "NO" not in EU_MEMBERS


@pytest.mark.parametrize(
    ("country", "on", "member"),
    [
        ("GB", date(2020, 12, 31), True),
        ("GB", date(2021, 1, 1), False),
        ("HR", date(2013, 6, 30), False),
        ("HR", date(2013, 7, 1), True),
        ("FR", DAY, True),
        ("GR", DAY, True),
        ("CH", DAY, False),
        ("NO", DAY, False),
        ("US", DAY, False),
    ],
)
def test_is_eu_on_a_date(country, on, member):
    assert is_eu(country, on) is member


# --- VAT identifiers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (" de 136 695 976 ", "DE136695976"),
        ("DE-136.695.976", "DE136695976"),
        ("fr 40 303 265 045", "FR40303265045"),
        ("nl004495445b01", "NL004495445B01"),
        ("che-116.281.710 mwst", "CHE116281710MWST"),
        ("NO 995 525 828 MVA", "NO995525828MVA"),
        ("gb 980 7806 84", "GB980780684"),
        ("GR094259216", "EL094259216"),  # Greece's VAT prefix is EL
        ("el\t094259216", "EL094259216"),
        ("", ""),
    ],
)
def test_normalize_vat_id(raw, normal):
    assert normalize_vat_id(raw) == normal


def test_normalize_refuses_non_strings():
    with pytest.raises(TypeError):
        normalize_vat_id(136695976)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        DE_ID,
        FR_ID,
        AT_ID,
        NL_ID,
        EL_ID,
        "GR094259216",
        "ESA28015865",
        "IT00743110157",
        "BE0403170701",
        "PL5260250274",
        CH_ID,
        "CHE116281710TVA",
        "CHE-116.281.710 IVA",
        NO_ID,
        GB_ID,
        "XI980780684",
        " de 136695976 ",
    ],
)
def test_valid_vat_ids(value):
    assert vat_id_is_valid(value)


@pytest.mark.parametrize(
    "value",
    [
        "DE136695977",  # check digit
        "FR41303265045",
        "ATU13585628",
        "NL004495446B01",
        "EL094259217",
        "CHE116281711MWST",
        "CHE116281710",  # a UID, not a VAT number: the MWST/TVA/IVA suffix is missing
        "NO995525829MVA",
        "NO995525828",  # no MVA suffix
        "GB980780685",
        "US123456789",  # no such prefix
        "EU372000041",  # non-Union OSS number, not a VAT ID of a country
        "DE",
        "",
    ],
)
def test_invalid_vat_ids(value):
    assert not vat_id_is_valid(value)


@pytest.mark.parametrize(
    ("value", "country", "valid"),
    [
        (DE_ID, "DE", True),
        (DE_ID, "FR", False),
        (EL_ID, "GR", True),
        (EL_ID, "EL", True),
        ("GR094259216", "GR", True),
        ("GR094259216", "EL", True),
        (EL_ID, "CY", False),
        (CH_ID, "CH", True),
        (NO_ID, "NO", True),
        (GB_ID, "GB", True),
        ("XI980780684", "GB", True),
        ("DE136695977", "DE", False),
        ("US123456789", "US", False),
    ],
)
def test_vat_id_must_belong_to_the_country(value, country, valid):
    assert vat_id_is_valid(value, country) is valid


def test_vat_id_country_check_rejects_bad_codes():
    with pytest.raises(ValueError):
        vat_id_is_valid(DE_ID, "de")


@pytest.mark.parametrize(
    ("value", "country"),
    [
        (DE_ID, "DE"),
        (EL_ID, "GR"),
        ("gr094259216", "GR"),
        (CH_ID, "CH"),
        (NO_ID, "NO"),
        (GB_ID, "GB"),
        ("XI980780684", "GB"),
        ("US123", None),
        ("", None),
    ],
)
def test_vat_id_country(value, country):
    assert vat_id_country(value) == country


# --- The decision ----------------------------------------------------------------------------

DE_SELLER = Party("DE", DE_ID)


def decision(category, rate_, reason, code, rule):
    return VatDecision(VatCategory(category), D(rate_), reason, code, rule)


REVERSE = decision("AE", 0, "Reverse charge", "VATEX-EU-AE", "eu_reverse_charge")
INTRA = decision("K", 0, "Intra-community supply", "VATEX-EU-IC", "eu_intra_community")
OUTSIDE = decision("O", 0, "Not subject to VAT", "VATEX-EU-O", "outside_scope")
EXPORT = decision("G", 0, "Export outside the EU", "VATEX-EU-G", "export")
NON_EU = decision("O", 0, "Not subject to VAT", "VATEX-EU-O", "non_eu_seller")


@pytest.mark.parametrize(
    ("seller", "buyer", "on", "supply", "expected"),
    [
        # Domestic, business or consumer: the seller's rate.
        (DE_SELLER, Party("DE", DE_ID), DAY, "services", decision("S", 19, None, None, "domestic")),
        (
            DE_SELLER,
            Party("DE", is_business=False),
            DAY,
            "goods",
            decision("S", 19, None, None, "domestic"),
        ),
        (
            DE_SELLER,
            Party("DE"),
            date(2020, 7, 1),
            "services",
            decision("S", 16, None, None, "domestic"),
        ),
        # EU B2B with a valid VAT ID of the buyer's country.
        (DE_SELLER, Party("FR", FR_ID), DAY, "services", REVERSE),
        (DE_SELLER, Party("FR", "fr 40 303 265 045"), DAY, "services", REVERSE),
        (DE_SELLER, Party("FR", FR_ID), DAY, "goods", INTRA),
        (DE_SELLER, Party("GR", EL_ID), DAY, "services", REVERSE),
        (DE_SELLER, Party("GR", "GR094259216"), DAY, "services", REVERSE),
        (DE_SELLER, Party("NL", NL_ID), DAY, "services", REVERSE),
        # EU B2C, or B2B without a usable VAT ID: the buyer's rate (OSS).
        (
            DE_SELLER,
            Party("FR", is_business=False),
            DAY,
            "services",
            decision("S", 20, None, None, "oss"),
        ),
        (
            DE_SELLER,
            Party("AT", is_business=False),
            DAY,
            "services",
            decision("S", 20, None, None, "oss"),
        ),
        (
            DE_SELLER,
            Party("FR", "FR41303265045"),
            DAY,
            "services",
            decision("S", 20, None, None, "oss"),
        ),  # invalid check digits
        (DE_SELLER, Party("FR"), DAY, "services", decision("S", 20, None, None, "oss")),
        (
            DE_SELLER,
            Party("FR", DE_ID),
            DAY,
            "services",
            decision("S", 20, None, None, "oss"),
        ),  # valid, but not a French ID
        (
            DE_SELLER,
            Party("FR", FR_ID, is_business=False),
            DAY,
            "services",
            decision("S", 20, None, None, "oss"),
        ),
        (
            DE_SELLER,
            Party("HU", is_business=False),
            DAY,
            "goods",
            decision("S", 27, None, None, "oss"),
        ),
        (
            DE_SELLER,
            Party("EE", is_business=False),
            date(2025, 7, 1),
            "services",
            decision("S", 24, None, None, "oss"),
        ),
        # EU seller, buyer outside the EU.
        (DE_SELLER, Party("US"), DAY, "services", OUTSIDE),
        (DE_SELLER, Party("US", is_business=False), DAY, "services", OUTSIDE),
        (DE_SELLER, Party("CH", CH_ID), DAY, "services", OUTSIDE),
        (DE_SELLER, Party("NO", NO_ID), DAY, "services", OUTSIDE),
        (DE_SELLER, Party("US"), DAY, "goods", EXPORT),
        (DE_SELLER, Party("CH", CH_ID), DAY, "goods", EXPORT),
        # Seller outside the EU.
        (
            Party("CH", CH_ID),
            Party("CH", CH_ID),
            DAY,
            "services",
            decision("S", "8.1", None, None, "domestic"),
        ),
        (
            Party("CH", CH_ID),
            Party("CH", is_business=False),
            date(2023, 6, 1),
            "services",
            decision("S", "7.7", None, None, "domestic"),
        ),
        (
            Party("NO", NO_ID),
            Party("NO"),
            DAY,
            "services",
            decision("S", 25, None, None, "domestic"),
        ),
        (Party("CH", CH_ID), Party("DE", DE_ID), DAY, "services", NON_EU),
        (Party("CH", CH_ID), Party("DE", is_business=False), DAY, "goods", NON_EU),
        (Party("NO", NO_ID), Party("US"), DAY, "services", NON_EU),
        # Brexit: GB was in the EU VAT area until 2020-12-31.
        (
            Party("GB", GB_ID),
            Party("GB"),
            DAY,
            "services",
            decision("S", 20, None, None, "domestic"),
        ),
        (Party("GB", GB_ID), Party("FR", FR_ID), date(2020, 12, 31), "services", REVERSE),
        (Party("GB", GB_ID), Party("FR", FR_ID), date(2021, 1, 1), "services", NON_EU),
        (
            Party("GB", GB_ID),
            Party("FR", is_business=False),
            date(2020, 12, 31),
            "services",
            decision("S", 20, None, None, "oss"),
        ),
        (DE_SELLER, Party("GB", GB_ID), date(2020, 12, 31), "services", REVERSE),
        (DE_SELLER, Party("GB", GB_ID), date(2020, 12, 31), "goods", INTRA),
        (DE_SELLER, Party("GB", GB_ID), date(2021, 1, 1), "services", OUTSIDE),
        (DE_SELLER, Party("GB", GB_ID), date(2021, 1, 1), "goods", EXPORT),
        (
            DE_SELLER,
            Party("GB", is_business=False),
            date(2020, 6, 1),
            "services",
            decision("S", 20, None, None, "oss"),
        ),
    ],
)
def test_decide_vat(seller, buyer, on, supply, expected):
    assert decide_vat(seller=seller, buyer=buyer, on=on, supply=supply) == expected


def test_supply_defaults_to_services():
    assert decide_vat(seller=DE_SELLER, buyer=Party("FR", FR_ID), on=DAY) == REVERSE


@pytest.mark.parametrize(
    ("seller", "buyer", "expected"),
    [
        (DE_SELLER, Party("DE"), D(7)),  # domestic: the seller's reduced rate
        (DE_SELLER, Party("FR", is_business=False), D(10)),  # OSS: the buyer's
        (Party("CH"), Party("CH"), D("2.6")),
    ],
)
def test_rate_kind_is_looked_up_where_the_vat_is_due(seller, buyer, expected):
    result = decide_vat(seller=seller, buyer=buyer, on=DAY, rate_kind="reduced")
    assert result.rate == expected


def test_zero_rated_decisions_ignore_the_rate_kind():
    result = decide_vat(seller=DE_SELLER, buyer=Party("FR", FR_ID), on=DAY, rate_kind="nope")
    assert result == REVERSE


def test_a_missing_rate_kind_is_an_unknown_rate():
    with pytest.raises(UnknownRate):
        decide_vat(seller=DE_SELLER, buyer=Party("DE"), on=DAY, rate_kind="super_reduced")
    with pytest.raises(UnknownRate):
        decide_vat(seller=Party("US"), buyer=Party("US"), on=DAY)


@pytest.mark.parametrize(
    ("seller", "buyer"),
    [
        (DE_SELLER, Party("DE")),  # would be domestic
        (DE_SELLER, Party("FR", FR_ID)),  # would be reverse charge
        (DE_SELLER, Party("FR", is_business=False)),  # would be OSS
        (DE_SELLER, Party("US")),  # would be outside scope
        (Party("CH"), Party("CH")),
    ],
)
def test_exempt_buyer_wins_over_every_other_rule(seller, buyer):
    exempt = Party(
        buyer.country,
        buyer.vat_id,
        buyer.is_business,
        tax_exempt=True,
        exemption_reason="Charity, Art. 132(1)(g)",
    )
    assert decide_vat(seller=seller, buyer=exempt, on=DAY, supply="goods") == decision(
        "E", 0, "Charity, Art. 132(1)(g)", "VATEX-EU-132", "exempt"
    )


@pytest.mark.parametrize(
    ("reason", "code"),
    [("VATEX-EU-F", "VATEX-EU-F"), (" vatex-eu-132 ", "VATEX-EU-132")],
)
def test_an_exemption_reason_that_is_a_code_is_used_as_the_code(reason, code):
    buyer = Party("FR", tax_exempt=True, exemption_reason=reason)
    result = decide_vat(seller=DE_SELLER, buyer=buyer, on=DAY)
    assert result.category is VatCategory.EXEMPT
    assert result.exemption_code == code
    assert result.exemption_reason == reason.strip()


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_an_exempt_buyer_needs_a_reason(reason):
    buyer = Party("FR", tax_exempt=True, exemption_reason=reason)
    with pytest.raises(ValueError, match="exemption reason"):
        decide_vat(seller=DE_SELLER, buyer=buyer, on=DAY)


@pytest.mark.parametrize("country", ["de", "EL", "DEU", ""])
def test_parties_need_iso_country_codes(country):
    with pytest.raises(ValueError):
        Party(country)


def test_supply_must_be_services_or_goods():
    with pytest.raises(ValueError, match="supply"):
        decide_vat(seller=DE_SELLER, buyer=Party("FR"), on=DAY, supply="rights")  # type: ignore[arg-type]


def test_decide_vat_needs_a_date():
    with pytest.raises(TypeError):
        decide_vat(seller=DE_SELLER, buyer=Party("FR"), on=datetime(2026, 1, 1))


def test_decide_vat_is_keyword_only():
    with pytest.raises(TypeError):
        decide_vat(DE_SELLER, Party("FR"), DAY)  # type: ignore[misc]


def test_decisions_are_frozen():
    result = decide_vat(seller=DE_SELLER, buyer=Party("DE"), on=DAY)
    with pytest.raises(AttributeError):
        result.rate = D(0)  # type: ignore[misc]


_ids = {"DE": DE_ID, "FR": FR_ID, "AT": AT_ID, "NL": NL_ID, "GR": EL_ID, "CH": CH_ID, "GB": GB_ID}


@given(
    seller=st.sampled_from(COVERED),
    buyer=st.sampled_from([*COVERED, "US", "JP"]),
    on=st.dates(min_value=COVERAGE_START, max_value=date(2030, 12, 31)),
    is_business=st.booleans(),
    supply=st.sampled_from(["services", "goods"]),
)
def test_decisions_are_consistent(seller, buyer, on, is_business, supply):
    result = decide_vat(
        seller=Party(seller),
        buyer=Party(buyer, _ids.get(buyer), is_business),
        on=on,
        supply=supply,
    )
    if result.category is VatCategory.STANDARD:
        # VAT is charged: domestic at the seller's rate, otherwise at the buyer's (OSS).
        assert result.exemption_code is None and result.exemption_reason is None
        where = seller if result.rule == "domestic" else buyer
        assert result.rule == "domestic" or (is_eu(seller, on) and is_eu(buyer, on))
        assert result.rate == rate(where, on) > 0
    else:
        assert result.rate == 0
        assert result.exemption_code.startswith("VATEX-EU-") and result.exemption_reason
        assert seller != buyer
    if result.category is VatCategory.REVERSE_CHARGE:
        assert supply == "services" and is_business and buyer in _ids


# --- LocationTax -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "on", "standard", "reduced", "eu"),
    [
        ("DE", DAY, "19", ["7"], True),
        ("DE", date(2020, 7, 1), "16", ["5"], True),
        ("FR", DAY, "20", ["10", "5.5", "2.1"], True),
        ("AT", date(2026, 7, 1), "20", ["13", "10", "4.9"], True),  # parking 13 % listed once
        ("IE", DAY, "23", ["13.5", "9", "4.8"], True),
        ("DK", DAY, "25", [], True),
        ("CH", DAY, "8.1", ["3.8", "2.6"], False),
        ("GB", date(2020, 12, 31), "20", ["5"], True),
        ("GB", date(2021, 1, 1), "20", ["5"], False),
    ],
)
def test_location_tax(country, on, standard, reduced, eu):
    assert location_tax(country, on) == {
        "country": country,
        "standard_rate": D(standard),
        "reduced_rates": [D(r) for r in reduced],
        "eu_member": eu,
        "valid_on": on,
    }


def test_location_tax_for_an_unknown_country():
    with pytest.raises(UnknownRate):
        location_tax("US", DAY)
    with pytest.raises(ValueError):
        location_tax("usa", DAY)


def test_module_imports_no_flask_or_database():
    source = Path(tax.__file__).read_text(encoding="utf-8")
    for name in ("flask", "sqlalchemy", "portal.extensions", "portal.db"):
        assert f"import {name}" not in source and f"from {name}" not in source
