"""The frozen invoice or credit note as the e-invoice generators need it (EN 16931 terms).

The generators never touch the database: :func:`einvoice_data` reads an issued document once
and hands them plain values, so every syntax says the same numbers. Amounts stay integer
minor units; the only arithmetic here is the credit note's VAT breakdown, which credit notes
do not store, recomputed by the same function that produced their totals and checked
against the stored columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.orm import Session

from portal.domain.money import currency_exponent
from portal.domain.totals import LineInput, compute_totals
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.states import CreditNoteStatus, InvoiceStatus, VatCategory
from portal.tenancy.models import Tenant

#: Document type codes (UNTDID 1001, BT-3).
COMMERCIAL_INVOICE = "380"
CREDIT_NOTE = "381"

#: EAS codes (CEF "Electronic Address Scheme") of the national VAT numbers Peppol accepts as
#: an electronic address (BT-34 / BT-49), by the country prefix of the VAT number.
VAT_EAS = {
    "AD": "9922", "AL": "9923", "AT": "9914", "BA": "9924", "BE": "9925", "BG": "9926",
    "CH": "9927", "CY": "9928", "CZ": "9929", "DE": "9930", "EE": "9931", "ES": "9920",
    "FR": "9957", "GB": "9932", "EL": "9933", "HR": "9934", "HU": "9910", "IE": "9935",
    "IT": "0211", "LI": "9936", "LT": "9937", "LU": "9938", "LV": "9939", "MC": "9940",
    "ME": "9941", "MK": "9942", "MT": "9943", "NL": "9944", "PL": "9945", "PT": "9946",
    "RO": "9947", "RS": "9948", "SI": "9949", "SK": "9950", "SM": "9951", "TR": "9952",
}  # fmt: skip

#: EN 16931 BR-DEC-*: amounts carry at most two decimals, so 3-decimal currencies (KWD, BHD,
#: OMR…) cannot be expressed exactly in any EN 16931 syntax.
MAX_EINVOICE_EXPONENT = 2


class EInvoiceUnavailable(Exception):
    """The document cannot be expressed as a valid e-invoice; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Party:
    """Seller (BG-4) or buyer (BG-7)."""

    name: str  # BT-27 / BT-44
    trading_name: str | None  # BT-28 / BT-45
    address_line1: str | None  # BT-35 / BT-50
    address_line2: str | None  # BT-36 / BT-51
    postal_code: str | None  # BT-38 / BT-53
    city: str | None  # BT-37 / BT-52
    region: str | None  # BT-39 / BT-54
    country: str  # BT-40 / BT-55
    vat_id: str | None  # BT-31 / BT-48
    tax_number: str | None  # BT-32 (seller only)
    registration: str | None  # BT-30
    endpoint_scheme: str  # EAS code of BT-34 / BT-49 ("EM": an e-mail address)
    endpoint_id: str  # BT-34 / BT-49
    contact_name: str | None  # BT-41 / BT-56
    phone: str | None  # BT-42 / BT-57
    email: str | None  # BT-43 / BT-58

    @property
    def has_peppol_address(self) -> bool:
        """Peppol (R010, R020, CL008) accepts EAS codes, but no longer e-mail addresses."""
        return bool(self.endpoint_id) and self.endpoint_scheme != "EM"


def electronic_address(
    scheme: str | None, identifier: str | None, vat_id: str | None, email: str | None
) -> tuple[str, str]:
    """BT-34 / BT-49: a configured Peppol id, else the VAT number, else the e-mail address."""
    if scheme and identifier:
        return scheme, identifier
    if vat_id and (eas := VAT_EAS.get(vat_id[:2].upper())):
        return eas, vat_id
    return "EM", email or ""


@dataclass(frozen=True)
class Line:
    """One invoice line (BG-25)."""

    position: int  # BT-126
    description: str  # BT-153
    quantity: Decimal  # BT-129
    unit_code: str  # BT-130
    unit_price: Decimal  # BT-146, major units
    net_minor: int  # BT-131
    category: str  # BT-151
    rate: Decimal  # BT-152
    period_start: dt.date | None  # BT-134
    period_end: dt.date | None  # BT-135


@dataclass(frozen=True)
class VatRow:
    """One row of the VAT breakdown (BG-23)."""

    category: str  # BT-118
    rate: Decimal  # BT-119
    taxable_minor: int  # BT-116
    tax_minor: int  # BT-117
    exemption_reason: str | None  # BT-120
    exemption_code: str | None  # BT-121


@dataclass(frozen=True)
class AllowanceCharge:
    """A document allowance (BG-20) or charge (BG-21)."""

    is_charge: bool
    amount_minor: int  # BT-92 / BT-99
    base_minor: int | None  # BT-93 / BT-100
    percent: Decimal | None  # BT-94 / BT-101
    reason: str  # BT-97 / BT-104
    reason_code: str | None  # BT-98 / BT-105
    category: str  # BT-95 / BT-102
    rate: Decimal  # BT-96 / BT-103


@dataclass(frozen=True)
class Totals:
    """Document totals (BG-22), minor units, exactly the stored columns."""

    lines_minor: int  # BT-106
    allowances_minor: int  # BT-107
    charges_minor: int  # BT-108
    tax_exclusive_minor: int  # BT-109
    tax_minor: int  # BT-110
    tax_inclusive_minor: int  # BT-112
    prepaid_minor: int  # BT-113
    rounding_minor: int  # BT-114
    due_minor: int  # BT-115


@dataclass(frozen=True)
class Payment:
    """Payment instructions (BG-16)."""

    means_code: str  # BT-81, UNTDID 4461
    means_text: str  # BT-82
    remittance: str | None  # BT-83
    iban: str | None  # BT-84
    account_name: str | None  # BT-85
    bic: str | None  # BT-86
    terms: str | None  # BT-20


@dataclass(frozen=True)
class EInvoiceData:
    """Everything an EN 16931 syntax needs, read once from the frozen document."""

    type_code: str  # BT-3
    number: str  # BT-1
    issue_date: dt.date  # BT-2
    due_date: dt.date | None  # BT-9
    currency: str  # BT-5
    exponent: int  # decimals of the currency's minor unit
    buyer_reference: str | None  # BT-10 as the buyer gave it (e.g. a Leitweg-ID)
    account_reference: str | None  # the buyer's account at the seller, BT-10 when none given
    order_reference: str | None  # BT-13
    notes: tuple[str, ...]  # BT-22
    period_start: dt.date | None  # BT-73
    period_end: dt.date | None  # BT-74
    preceding_number: str | None  # BT-25
    preceding_date: dt.date | None  # BT-26
    seller: Party
    buyer: Party
    payment: Payment
    lines: tuple[Line, ...]
    vat: tuple[VatRow, ...]
    allowance_charges: tuple[AllowanceCharge, ...]
    totals: Totals
    language: str = "en"
    warnings: tuple[str, ...] = field(default=())

    @property
    def is_credit_note(self) -> bool:
        return self.type_code == CREDIT_NOTE

    @property
    def routing_reference(self) -> str | None:
        """BT-10 to print: the buyer's own, else the buyer's account id.

        Always given: Peppol R003 wants BT-10 or an order reference, and the German national
        rule DE-R-015 wants BT-10 whenever seller and buyer are both in Germany, order
        reference or not.
        """
        return self.buyer_reference or self.account_reference

    @property
    def outside_scope(self) -> bool:
        """BR-O-02: a category O invoice carries neither seller nor buyer VAT identifier."""
        return any(row.category == VatCategory.OUTSIDE_SCOPE.value for row in self.vat)

    def amount(self, minor: int) -> str:
        """A minor-unit amount as the XML decimal with the currency's decimals ("12.50")."""
        return format(Decimal(minor).scaleb(-self.exponent), f".{self.exponent}f")


def decimal_text(value: Decimal) -> str:
    """A quantity, price or rate without exponent or trailing zeros ("2.5", "19", "0.085")."""
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def is_issued(document: Invoice | CreditNote) -> bool:
    """Whether the document was issued (so it is frozen and may have an e-invoice)."""
    if isinstance(document, CreditNote):
        return document.status != CreditNoteStatus.DRAFT
    return document.status != InvoiceStatus.DRAFT


def _clean(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _seller(snapshot: dict) -> Party:
    email = _clean(snapshot.get("email"))
    vat_id = _clean(snapshot.get("vat_id"))
    endpoint = electronic_address(None, None, vat_id, email)
    return Party(
        name=_clean(snapshot.get("legal_name")) or "",
        trading_name=_clean(snapshot.get("trading_name")),
        address_line1=_clean(snapshot.get("address_line1")),
        address_line2=_clean(snapshot.get("address_line2")),
        postal_code=_clean(snapshot.get("postal_code")),
        city=_clean(snapshot.get("city")),
        region=_clean(snapshot.get("region")),
        country=(_clean(snapshot.get("country")) or "").upper(),
        vat_id=vat_id,
        tax_number=_clean(snapshot.get("tax_number")),
        registration=_clean(snapshot.get("registration")),
        # BT-34 is mandatory in Peppol and XRechnung; the seller has no Peppol id of its own.
        endpoint_scheme=endpoint[0],
        endpoint_id=endpoint[1],
        # XRechnung BR-DE-5: a contact point; the seller keeps a billing desk, not a person.
        contact_name=_clean(snapshot.get("legal_name")),
        phone=_clean(snapshot.get("phone")),
        email=email,
    )


def _buyer(snapshot: dict, fallback_name: str) -> Party:
    email = _clean(snapshot.get("billing_email"))
    vat_id = _clean(snapshot.get("vat_id"))
    scheme, endpoint = electronic_address(
        _clean(snapshot.get("peppol_endpoint_scheme")),
        _clean(snapshot.get("peppol_endpoint_id")),
        vat_id,
        email,
    )
    return Party(
        name=_clean(snapshot.get("company_name")) or fallback_name,
        trading_name=None,
        address_line1=_clean(snapshot.get("address_line1")),
        address_line2=_clean(snapshot.get("address_line2")),
        postal_code=_clean(snapshot.get("postal_code")),
        city=_clean(snapshot.get("city")),
        region=_clean(snapshot.get("region")),
        country=(_clean(snapshot.get("country")) or "").upper(),
        vat_id=vat_id,
        tax_number=None,
        registration=None,
        endpoint_scheme=scheme,
        endpoint_id=endpoint,
        contact_name=_clean(snapshot.get("contact_name")),
        phone=_clean(snapshot.get("phone")),
        email=email,
    )


def _lines(document: Invoice | CreditNote) -> tuple[Line, ...]:
    return tuple(
        Line(
            position=line.position,
            description=line.description,
            quantity=Decimal(line.quantity),
            unit_code=line.unit_code or "C62",
            unit_price=Decimal(line.unit_price),
            net_minor=line.net_amount_minor,
            category=VatCategory(line.vat_category).value,
            rate=Decimal(line.vat_rate),
            period_start=line.period_start,
            period_end=line.period_end,
        )
        for line in document.lines
    )


def _exemptions(document: Invoice | CreditNote) -> dict[tuple[str, Decimal], tuple]:
    return {
        (VatCategory(li.vat_category).value, Decimal(li.vat_rate)): (
            li.vat_exemption_reason,
            li.vat_exemption_code,
        )
        # A slice rather than reversed(): it keeps the line type of each document kind.
        for li in document.lines[::-1]
    }


def _invoice_vat(invoice: Invoice) -> tuple[VatRow, ...]:
    exemptions = _exemptions(invoice)
    rows = []
    for row in invoice.vat_breakdown:
        key = (VatCategory(row.category).value, Decimal(row.rate))
        reason, code = row.exemption_reason, row.exemption_code
        if key[0] != VatCategory.STANDARD.value and not (reason or code):
            # A breakdown made only by an allowance has no line to inherit the exemption from.
            reason, code = exemptions.get(key, (None, None))
        rows.append(VatRow(key[0], key[1], row.taxable_minor, row.tax_minor, reason, code))
    return tuple(rows)


def credit_note_vat(note: CreditNote) -> tuple[VatRow, ...]:
    """Credit notes store no breakdown: recompute it as issue_credit_note computed its totals."""
    totals = compute_totals(
        [
            LineInput(li.quantity, li.unit_price, VatCategory(li.vat_category).value, li.vat_rate)
            for li in note.lines
        ],
        note.currency,
    )
    if (totals.tax.minor, totals.tax_exclusive.minor) != (note.tax_minor, note.tax_exclusive_minor):
        raise EInvoiceUnavailable(
            f"credit note {note.number}: its VAT breakdown does not add up to the stored totals"
        )
    exemptions = _exemptions(note)
    return tuple(
        VatRow(
            group.category,
            group.rate,
            group.taxable.minor,
            group.tax.minor,
            *exemptions.get((group.category, group.rate), (None, None)),
        )
        for group in totals.vat_breakdown
    )


def _payment(document: Invoice | CreditNote, seller: dict) -> Payment:
    iban = _clean(seller.get("iban"))
    iban = iban.replace(" ", "").upper() if iban else None
    if isinstance(document, CreditNote):
        # Nothing is to be paid by the buyer: the credit is set off against the invoice
        # (UNTDID 4461 code 97, "clearing between partners").
        terms = f"Credited against invoice {document.invoice.number}."
        return Payment("97", "Clearing between partners", document.number, None, None, None, terms)
    if iban:
        sepa = document.currency == "EUR"
        return Payment(
            "58" if sepa else "30",
            "SEPA credit transfer" if sepa else "Credit transfer",
            document.number,
            iban,
            _clean(seller.get("legal_name")),
            _clean(seller.get("bic")),
            None,
        )
    return Payment("1", "Instrument not defined", document.number, None, None, None, None)


def einvoice_data(session: Session, document: Invoice | CreditNote) -> EInvoiceData:
    """The issued ``document`` as EN 16931 data.

    :raise EInvoiceUnavailable: for drafts and for currencies with more than two decimals.
    """
    if not is_issued(document):
        raise EInvoiceUnavailable("A draft has no e-invoice: it gets one when it is issued.")
    exponent = currency_exponent(document.currency)
    if exponent > MAX_EINVOICE_EXPONENT:
        raise EInvoiceUnavailable(
            f"EN 16931 allows at most two decimals; {document.currency} amounts have {exponent}."
        )
    seller_snapshot = dict(document.seller_snapshot or {})
    buyer_snapshot = dict(document.buyer_snapshot or {})
    tenant = session.get(Tenant, document.tenant_id)
    buyer = _buyer(buyer_snapshot, tenant.name if tenant else "")
    if isinstance(document, CreditNote):
        invoice = document.invoice
        data_kind = CREDIT_NOTE
        vat = credit_note_vat(document)
        allowances: tuple[AllowanceCharge, ...] = ()
        buyer_reference = invoice.buyer_reference
        order_reference = invoice.purchase_order
        notes: tuple[str, ...] = (document.reason,)
        period = (invoice.period_start, invoice.period_end)
        preceding = (invoice.number, invoice.issue_date)
        due_date = None
    else:
        data_kind = COMMERCIAL_INVOICE
        vat = _invoice_vat(document)
        allowances = tuple(
            AllowanceCharge(
                ac.is_charge,
                ac.amount_minor,
                ac.base_minor,
                Decimal(ac.percent) if ac.percent is not None else None,
                ac.reason,
                ac.reason_code,
                VatCategory(ac.vat_category).value,
                Decimal(ac.vat_rate),
            )
            for ac in document.allowance_charges
        )
        buyer_reference = document.buyer_reference
        order_reference = document.purchase_order
        notes = tuple(n for n in (document.note,) if n)
        period = (document.period_start, document.period_end)
        preceding = (None, None)
        due_date = document.due_date
    # Issuing sets the date (is_issued above); the column is nullable only for drafts.
    assert document.issue_date is not None
    return EInvoiceData(
        type_code=data_kind,
        number=document.number or "",
        issue_date=document.issue_date,
        due_date=due_date,
        currency=document.currency,
        exponent=exponent,
        buyer_reference=buyer_reference,
        account_reference=tenant.slug if tenant is not None else None,
        order_reference=order_reference,
        notes=notes,
        period_start=period[0],
        period_end=period[1],
        preceding_number=preceding[0],
        preceding_date=preceding[1],
        seller=_seller(seller_snapshot),
        buyer=buyer,
        payment=_payment(document, seller_snapshot),
        lines=_lines(document),
        vat=vat,
        allowance_charges=allowances,
        totals=Totals(
            lines_minor=document.lines_total_minor,
            allowances_minor=document.allowance_total_minor,
            charges_minor=document.charge_total_minor,
            tax_exclusive_minor=document.tax_exclusive_minor,
            tax_minor=document.tax_minor,
            tax_inclusive_minor=document.tax_inclusive_minor,
            prepaid_minor=document.prepaid_minor,
            rounding_minor=document.rounding_minor,
            due_minor=document.amount_due_minor,
        ),
        language=document.language or "en",
    )
