"""VAT rates by country and date, VAT-ID syntax, and the VAT category of a supply."""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, TypedDict

from babel import Locale
from stdnum.ch import vat as ch_vat
from stdnum.eu import vat as eu_vat
from stdnum.gb import vat as gb_vat
from stdnum.no import mva as no_mva


class VatCategory(enum.StrEnum):
    """UNCL5305 VAT category codes used by EN 16931 (BT-118, BT-151)."""

    # Same values as portal.invoices.states.VatCategory (a test keeps them in step).
    STANDARD = "S"
    ZERO = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"
    INTRA_COMMUNITY = "K"
    EXPORT = "G"
    OUTSIDE_SCOPE = "O"


class UnknownRate(LookupError):
    """No VAT rate of that kind is known for that country on that date."""


# --- Countries -----------------------------------------------------------------------------

# CLDR (through Babel) lists every ISO 3166-1 alpha-2 code plus a few that are not
# assigned countries: groupings (EU, EZ, UN, QO), pseudo-locales (XA, XB), "unknown" (ZZ) and
# the "exceptionally reserved" codes. XK (Kosovo, user-assigned) stays: the EU Commission and
# payment providers use it, and refusing it would lock out real customers.
_NOT_COUNTRIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"}
)
#: ISO 3166-1 alpha-2 codes of real countries (an address or a tax location can have one).
COUNTRY_CODES: frozenset[str] = frozenset(
    code
    for code in Locale("en").territories
    # Babel types the keys of its locale data loosely (str | int | None); these are strings.
    if isinstance(code, str)
    and len(code) == 2
    and code.isalpha()
    and code.isupper()
    and code not in _NOT_COUNTRIES
)

# Accession to the EU (and so to its VAT area). GB left the VAT area at the end of the
# transition period, 2021-01-01 (Withdrawal Agreement, Art. 126); Northern Ireland's goods
# trade (VAT prefix "XI") is not modelled as EU here.
_JOINED = {
    **dict.fromkeys(("BE", "DE", "FR", "IT", "LU", "NL"), date(1958, 1, 1)),
    **dict.fromkeys(("DK", "IE", "GB"), date(1973, 1, 1)),
    "GR": date(1981, 1, 1),
    **dict.fromkeys(("ES", "PT"), date(1986, 1, 1)),
    **dict.fromkeys(("AT", "FI", "SE"), date(1995, 1, 1)),
    **dict.fromkeys(("CY", "CZ", "EE", "HU", "LT", "LV", "MT", "PL", "SI", "SK"), date(2004, 5, 1)),
    **dict.fromkeys(("BG", "RO"), date(2007, 1, 1)),
    "HR": date(2013, 7, 1),
}
_LEFT = {"GB": date(2021, 1, 1)}

#: Current EU member states by ISO 3166-1 code (Greece is "GR" here, "EL" only in VAT IDs).
EU_MEMBERS = frozenset(code for code in _JOINED if code not in _LEFT)


def _check_country(country: str) -> str:
    if not isinstance(country, str) or country not in COUNTRY_CODES:
        hint = " (Greece is 'GR'; 'EL' is only its VAT prefix)" if country == "EL" else ""
        raise ValueError(f"not an upper-case ISO 3166-1 alpha-2 country code: {country!r}{hint}")
    return country


def _check_date(on: date) -> date:
    # A timestamp would make the rate depend on a time zone around midnight of a change;
    # the tax point is a calendar date (the invoice or supply date, BT-2 / BT-72).
    if isinstance(on, datetime) or not isinstance(on, date):
        raise TypeError(f"expected a date, got {type(on).__name__}")
    return on


def is_eu(country: str, on: date) -> bool:
    """Whether ``country`` belongs to the EU VAT area on ``on`` (GB until 2020-12-31)."""
    _check_country(country)
    _check_date(on)
    joined = _JOINED.get(country)
    left = _LEFT.get(country)
    return joined is not None and joined <= on and (left is None or on < left)


# --- Rates ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VatRate:
    """A rate in percent of one kind in one country, valid from ``valid_from`` to ``valid_to``.

    Both ends are inclusive; ``valid_to`` None means "until further notice".
    """

    country: str
    kind: str
    rate: Decimal
    valid_from: date
    valid_to: date | None


#: Rate kinds. "reduced", "reduced_2" and "reduced_3" are a country's reduced rates of at least
#: 5 % (Directive 2006/112/EC Art. 98), highest first on the day; "super_reduced" is a rate
#: below 5 % (Art. 98(2) since Directive (EU) 2022/542, or Art. 110 derogations); "parking" is
#: the Art. 118 parking rate. "accommodation" is Switzerland's special rate for lodging
#: (MWSTG Art. 25(4)). The kind says nothing about which goods carry it: the operator picks
#: the kind per product, and these names only find the right number for a date.
RATE_KINDS = (
    "standard",
    "reduced",
    "reduced_2",
    "reduced_3",
    "super_reduced",
    "parking",
    "accommodation",
)

#: The table starts here: invoices dated earlier are not supported (UnknownRate).
COVERAGE_START = date(2020, 1, 1)

_S = COVERAGE_START


def _history(country: str, kind: str, *steps: tuple[date, str | None]) -> tuple[VatRate, ...]:
    """Records of one (country, kind) from (first day, rate) steps; a None rate ends the kind."""
    records = []
    for i, (valid_from, rate) in enumerate(steps):
        if rate is None:
            continue
        valid_to = steps[i + 1][0] - timedelta(days=1) if i + 1 < len(steps) else None
        records.append(VatRate(country, kind, Decimal(rate), valid_from, valid_to))
    return tuple(records)


# Rates are data to be maintained, not code: check them against the national tax authorities
# and the EU Commission's "VAT rates applied in the Member States" table (taxation-customs.
# ec.europa.eu) whenever a budget changes them, and add a step rather than edit a past one, so
# that invoices keep the rate of their own date. Sector moves between existing rates
# (restaurants, food, energy) are not rate changes and are not recorded; neither are regional
# rates (Azores, Madeira, Greek islands, Büsingen, Heligoland), zero rates, or NO's 11.11 %
# for wild marine resources.
RATES: tuple[VatRate, ...] = (
    # Austria. 4.9 % on selected basic foodstuffs from 2026-07-01 (2026 food VAT cut).
    *_history("AT", "standard", (_S, "20")),
    *_history("AT", "reduced", (_S, "13")),
    *_history("AT", "reduced_2", (_S, "10")),
    *_history("AT", "super_reduced", (date(2026, 7, 1), "4.9")),
    *_history("AT", "parking", (_S, "13")),
    # Belgium.
    *_history("BE", "standard", (_S, "21")),
    *_history("BE", "reduced", (_S, "12")),
    *_history("BE", "reduced_2", (_S, "6")),
    *_history("BE", "parking", (_S, "12")),
    # Bulgaria.
    *_history("BG", "standard", (_S, "20")),
    *_history("BG", "reduced", (_S, "9")),
    # Cyprus. 3 % for books, press and disability aids from 2023-07-21 (law of July 2023).
    *_history("CY", "standard", (_S, "19")),
    *_history("CY", "reduced", (_S, "9")),
    *_history("CY", "reduced_2", (_S, "5")),
    *_history("CY", "super_reduced", (date(2023, 7, 21), "3")),
    # Czechia. 15 % and 10 % merged into 12 % on 2024-01-01 (consolidation package).
    *_history("CZ", "standard", (_S, "21")),
    *_history("CZ", "reduced", (_S, "15"), (date(2024, 1, 1), "12")),
    *_history("CZ", "reduced_2", (_S, "10"), (date(2024, 1, 1), None)),
    # Germany. 16 % / 5 % from 2020-07-01 to 2020-12-31 (Zweites Corona-Steuerhilfegesetz).
    *_history("DE", "standard", (_S, "19"), (date(2020, 7, 1), "16"), (date(2021, 1, 1), "19")),
    *_history("DE", "reduced", (_S, "7"), (date(2020, 7, 1), "5"), (date(2021, 1, 1), "7")),
    # Denmark: one rate.
    *_history("DK", "standard", (_S, "25")),
    # Estonia. Standard 20 → 22 % on 2024-01-01 → 24 % on 2025-07-01; press 5 % from
    # 2022-08-01; on 2025-01-01 accommodation 9 → 13 % and press 5 → 9 %.
    *_history("EE", "standard", (_S, "20"), (date(2024, 1, 1), "22"), (date(2025, 7, 1), "24")),
    *_history("EE", "reduced", (_S, "9"), (date(2025, 1, 1), "13")),
    *_history("EE", "reduced_2", (date(2022, 8, 1), "5"), (date(2025, 1, 1), "9")),
    # Spain.
    *_history("ES", "standard", (_S, "21")),
    *_history("ES", "reduced", (_S, "10")),
    *_history("ES", "super_reduced", (_S, "4")),
    # Finland. Standard 24 → 25.5 % on 2024-09-01; reduced 14 → 13.5 % on 2026-01-01.
    *_history("FI", "standard", (_S, "24"), (date(2024, 9, 1), "25.5")),
    *_history("FI", "reduced", (_S, "14"), (date(2026, 1, 1), "13.5")),
    *_history("FI", "reduced_2", (_S, "10")),
    # France.
    *_history("FR", "standard", (_S, "20")),
    *_history("FR", "reduced", (_S, "10")),
    *_history("FR", "reduced_2", (_S, "5.5")),
    *_history("FR", "super_reduced", (_S, "2.1")),
    # Greece (VAT prefix EL).
    *_history("GR", "standard", (_S, "24")),
    *_history("GR", "reduced", (_S, "13")),
    *_history("GR", "reduced_2", (_S, "6")),
    # Croatia.
    *_history("HR", "standard", (_S, "25")),
    *_history("HR", "reduced", (_S, "13")),
    *_history("HR", "reduced_2", (_S, "5")),
    # Hungary.
    *_history("HU", "standard", (_S, "27")),
    *_history("HU", "reduced", (_S, "18")),
    *_history("HU", "reduced_2", (_S, "5")),
    # Ireland. Standard 21 % from 2020-09-01 to 2021-02-28 (July Jobs Stimulus).
    *_history("IE", "standard", (_S, "23"), (date(2020, 9, 1), "21"), (date(2021, 3, 1), "23")),
    *_history("IE", "reduced", (_S, "13.5")),
    *_history("IE", "reduced_2", (_S, "9")),
    *_history("IE", "super_reduced", (_S, "4.8")),
    *_history("IE", "parking", (_S, "13.5")),
    # Italy.
    *_history("IT", "standard", (_S, "22")),
    *_history("IT", "reduced", (_S, "10")),
    *_history("IT", "reduced_2", (_S, "5")),
    *_history("IT", "super_reduced", (_S, "4")),
    # Lithuania. 9 % abolished on 2026-01-01: its supplies moved to a new 12 % (or 5 %, 21 %).
    *_history("LT", "standard", (_S, "21")),
    *_history("LT", "reduced", (_S, "9"), (date(2026, 1, 1), "12")),
    *_history("LT", "reduced_2", (_S, "5")),
    # Luxembourg. Every rate but the super-reduced one 1 point lower during 2023.
    *_history("LU", "standard", (_S, "17"), (date(2023, 1, 1), "16"), (date(2024, 1, 1), "17")),
    *_history("LU", "reduced", (_S, "8"), (date(2023, 1, 1), "7"), (date(2024, 1, 1), "8")),
    *_history("LU", "super_reduced", (_S, "3")),
    *_history("LU", "parking", (_S, "14"), (date(2023, 1, 1), "13"), (date(2024, 1, 1), "14")),
    # Latvia.
    *_history("LV", "standard", (_S, "21")),
    *_history("LV", "reduced", (_S, "12")),
    *_history("LV", "reduced_2", (_S, "5")),
    # Malta. A third reduced rate of 12 % from 2024-01-01 (Legal Notice 231 of 2023); the
    # kinds are ordered by rate, so "reduced" is 12 % from then on.
    *_history("MT", "standard", (_S, "18")),
    *_history("MT", "reduced", (_S, "7"), (date(2024, 1, 1), "12")),
    *_history("MT", "reduced_2", (_S, "5"), (date(2024, 1, 1), "7")),
    *_history("MT", "reduced_3", (date(2024, 1, 1), "5")),
    # Netherlands.
    *_history("NL", "standard", (_S, "21")),
    *_history("NL", "reduced", (_S, "9")),
    # Poland.
    *_history("PL", "standard", (_S, "23")),
    *_history("PL", "reduced", (_S, "8")),
    *_history("PL", "reduced_2", (_S, "5")),
    # Portugal (mainland).
    *_history("PT", "standard", (_S, "23")),
    *_history("PT", "reduced", (_S, "13")),
    *_history("PT", "reduced_2", (_S, "6")),
    *_history("PT", "parking", (_S, "13")),
    # Romania. Standard 19 → 21 % and 9 % / 5 % merged into 11 % on 2025-08-01 (Law 141/2025).
    *_history("RO", "standard", (_S, "19"), (date(2025, 8, 1), "21")),
    *_history("RO", "reduced", (_S, "9"), (date(2025, 8, 1), "11")),
    *_history("RO", "reduced_2", (_S, "5"), (date(2025, 8, 1), None)),
    # Sweden.
    *_history("SE", "standard", (_S, "25")),
    *_history("SE", "reduced", (_S, "12")),
    *_history("SE", "reduced_2", (_S, "6")),
    # Slovenia.
    *_history("SI", "standard", (_S, "22")),
    *_history("SI", "reduced", (_S, "9.5")),
    *_history("SI", "reduced_2", (_S, "5")),
    # Slovakia. 5 % from 2023-01-01; on 2025-01-01 standard 20 → 23 % and 10 % replaced
    # by 19 % (2024 consolidation package).
    *_history("SK", "standard", (_S, "20"), (date(2025, 1, 1), "23")),
    *_history("SK", "reduced", (_S, "10"), (date(2025, 1, 1), "19")),
    *_history("SK", "reduced_2", (date(2023, 1, 1), "5")),
    # Switzerland. 7.7 / 2.5 / 3.7 % → 8.1 / 2.6 / 3.8 % on 2024-01-01 (AHV 21).
    *_history("CH", "standard", (_S, "7.7"), (date(2024, 1, 1), "8.1")),
    *_history("CH", "reduced", (_S, "2.5"), (date(2024, 1, 1), "2.6")),
    *_history("CH", "accommodation", (_S, "3.7"), (date(2024, 1, 1), "3.8")),
    # Norway. The 12 % rate was 6 % from 2020-04-01 to 2021-09-30 (COVID-19 measure).
    *_history("NO", "standard", (_S, "25")),
    *_history("NO", "reduced", (_S, "15")),
    *_history("NO", "reduced_2", (_S, "12"), (date(2020, 4, 1), "6"), (date(2021, 10, 1), "12")),
    # United Kingdom (sector cuts for hospitality in 2020-2022 used 5 % / 12.5 % but the
    # 12.5 % rate existed only for those sectors and is not recorded).
    *_history("GB", "standard", (_S, "20")),
    *_history("GB", "reduced", (_S, "5")),
)

_BY_COUNTRY: dict[str, list[VatRate]] = defaultdict(list)
for _record in RATES:
    _BY_COUNTRY[_record.country].append(_record)


def rates_on(country: str, on: date) -> dict[str, Decimal]:
    """Every rate kind of ``country`` valid on ``on``, as kind → percent."""
    _check_country(country)
    _check_date(on)
    found = {
        r.kind: r.rate
        for r in _BY_COUNTRY.get(country, ())
        if r.valid_from <= on and (r.valid_to is None or on <= r.valid_to)
    }
    if not found:
        raise UnknownRate(f"no VAT rates known for {country} on {on.isoformat()}")
    return found


def rate(country: str, on: date, kind: str = "standard") -> Decimal:
    """The ``kind`` rate of ``country`` in percent on ``on``; UnknownRate if there is none."""
    rates = rates_on(country, on)
    try:
        return rates[kind]
    except KeyError:
        raise UnknownRate(
            f"no {kind!r} VAT rate for {country} on {on.isoformat()} (has {', '.join(rates)})"
        ) from None


class LocationTax(TypedDict):
    """What the account API's LocationTax endpoint returns for a country."""

    country: str
    standard_rate: Decimal
    reduced_rates: list[Decimal]
    eu_member: bool
    valid_on: date


def location_tax(country: str, on: date) -> LocationTax:
    """Standard and reduced rates (highest first) of ``country`` on ``on``, and EU membership."""
    rates = rates_on(country, on)
    return {
        "country": country,
        "standard_rate": rates["standard"],
        "reduced_rates": sorted({r for k, r in rates.items() if k != "standard"}, reverse=True),
        "eu_member": is_eu(country, on),
        "valid_on": on,
    }


# --- VAT identifiers -------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-./,:]+")

# VAT-ID prefixes that differ from the ISO code: Greece uses EL (Directive 2006/112/EC
# Art. 215), Northern Ireland's traders XI (Windsor Framework) though the country is GB.
_PREFIX_COUNTRY = {"EL": "GR", "XI": "GB"}


def normalize_vat_id(value: str) -> str:
    """``value`` without spaces or separators, upper-case; a "GR" prefix becomes "EL"."""
    if not isinstance(value, str):
        raise TypeError(f"a VAT ID is a string, got {type(value).__name__}")
    number = _SEPARATORS.sub("", value).upper()
    # VIES and EN 16931 (BT-31/BT-48) use EL; people type GR.
    if number.startswith("GR"):
        number = "EL" + number[2:]
    return number


def vat_id_country(value: str) -> str | None:
    """The ISO country a VAT ID's prefix belongs to (EL → GR, XI → GB, CHE → CH), or None."""
    number = normalize_vat_id(value)
    if number.startswith("CHE"):
        return "CH"
    prefix = number[:2]
    if prefix in _PREFIX_COUNTRY:
        return _PREFIX_COUNTRY[prefix]
    if prefix in _JOINED or prefix == "NO":
        return prefix
    return None


def vat_id_is_valid(value: str, country: str | None = None) -> bool:
    """Whether ``value`` is a well-formed VAT ID with correct check digits (no VIES lookup).

    With ``country``, the prefix must also belong to it ("EL" and "GR" both mean Greece).
    """
    number = normalize_vat_id(value)
    owner = vat_id_country(number)
    if country is not None:
        wanted = "GR" if country == "EL" else _check_country(country)
        if owner != wanted:
            return False
    if owner is None:
        return False
    if owner == "CH":
        return ch_vat.is_valid(number)  # CHE-123.456.789 MWST / TVA / IVA
    if owner == "NO":
        return no_mva.is_valid(number)  # NO 123 456 789 MVA
    if number.startswith("GB"):
        return gb_vat.is_valid(number)
    return eu_vat.is_valid(number)


# --- The decision ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    """Seller or buyer as far as VAT cares: where it is and what it is."""

    country: str
    vat_id: str | None = None
    is_business: bool = True
    tax_exempt: bool = False
    exemption_reason: str | None = None

    def __post_init__(self) -> None:
        _check_country(self.country)


@dataclass(frozen=True, slots=True)
class VatDecision:
    """The VAT category, rate (percent) and exemption of a supply, and the rule that chose it."""

    category: VatCategory
    rate: Decimal
    exemption_reason: str | None  # BT-120
    exemption_code: str | None  # BT-121, CEF VATEX code list
    rule: str


_ZERO = Decimal(0)


def decide_vat(
    *,
    seller: Party,
    buyer: Party,
    on: date,
    supply: Literal["services", "goods"] = "services",
    rate_kind: str = "standard",
) -> VatDecision:
    """Which VAT applies when ``seller`` supplies ``buyer`` on ``on`` (rules in order)."""
    if supply not in ("services", "goods"):
        raise ValueError(f"supply must be 'services' or 'goods', not {supply!r}")
    _check_date(on)

    if buyer.tax_exempt:
        reason = (buyer.exemption_reason or "").strip()
        # EN 16931 BR-E-10: category E needs an exemption reason (BT-120 or BT-121).
        if not reason:
            raise ValueError("a tax-exempt buyer needs an exemption reason")
        # Art. 132 exemptions (charities, education, health) unless a VATEX code was given.
        code = reason.upper() if reason.upper().startswith("VATEX") else "VATEX-EU-132"
        return VatDecision(VatCategory.EXEMPT, _ZERO, reason, code, "exempt")

    if seller.country == buyer.country:
        return VatDecision(
            VatCategory.STANDARD, rate(seller.country, on, rate_kind), None, None, "domestic"
        )

    seller_eu = is_eu(seller.country, on)
    if seller_eu and is_eu(buyer.country, on):
        if buyer.is_business and buyer.vat_id and vat_id_is_valid(buyer.vat_id, buyer.country):
            if supply == "services":
                # B2B services: place of supply is the buyer's (Art. 44), who accounts for the
                # VAT (Art. 196).
                return VatDecision(
                    VatCategory.REVERSE_CHARGE,
                    _ZERO,
                    "Reverse charge",
                    "VATEX-EU-AE",
                    "eu_reverse_charge",
                )
            # Goods dispatched to a business in another member state are exempt (Art. 138).
            return VatDecision(
                VatCategory.INTRA_COMMUNITY,
                _ZERO,
                "Intra-community supply",
                "VATEX-EU-IC",
                "eu_intra_community",
            )
        # Consumers (and businesses that cannot show a valid VAT ID) pay the VAT of where they
        # are (Art. 58 for electronic services, Art. 33 for distance sales), declared through
        # the One-Stop Shop. The EUR 10,000 micro-business threshold (Art. 59c) is not applied.
        return VatDecision(
            VatCategory.STANDARD, rate(buyer.country, on, rate_kind), None, None, "oss"
        )

    if seller_eu:
        if supply == "services":
            # Place of supply outside the EU (Art. 44 / Art. 59): not subject to EU VAT.
            return VatDecision(
                VatCategory.OUTSIDE_SCOPE,
                _ZERO,
                "Not subject to VAT",
                "VATEX-EU-O",
                "outside_scope",
            )
        # Goods leaving the EU are exempt exports (Art. 146).
        return VatDecision(
            VatCategory.EXPORT, _ZERO, "Export outside the EU", "VATEX-EU-G", "export"
        )

    # A seller outside the EU (CH, NO, GB since 2021) charges its own VAT only at home,
    # handled above; abroad it is outside the scope of that VAT.
    return VatDecision(
        VatCategory.OUTSIDE_SCOPE, _ZERO, "Not subject to VAT", "VATEX-EU-O", "non_eu_seller"
    )
