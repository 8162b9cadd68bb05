"""UBL 2.1 Invoice and CreditNote in Peppol BIS Billing 3.0 and XRechnung 3.0 (UBL syntax).

Element order follows the UBL 2.1 schemas (the XSD rejects any other order); comments name
the EN 16931 business terms (BT-/BG-) each element carries.
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from portal.documents.einvoice.model import (
    EInvoiceData,
    EInvoiceUnavailable,
    Line,
    Party,
    VatRow,
    decimal_text,
)
from portal.invoices.states import VatCategory

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

#: BT-24 of Peppol BIS Billing 3.0.
PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
#: BT-24 of XRechnung 3.0 (BR-DE-21).
XRECHNUNG_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
#: BT-23 of Peppol BIS Billing 3.0 (billing process 01).
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

_CUSTOMIZATION = {"peppol": PEPPOL_CUSTOMIZATION, "xrechnung": XRECHNUNG_CUSTOMIZATION}
_O = VatCategory.OUTSIDE_SCOPE.value


def _cbc(name: str) -> str:
    return f"{{{NS_CBC}}}{name}"


def _cac(name: str) -> str:
    return f"{{{NS_CAC}}}{name}"


_SUB = etree.SubElement


def _text(parent: etree._Element, tag: str, text: str | None, /, **attrib: str) -> None:
    """A cbc element, left out when empty (Peppol R008: no empty elements)."""
    if text is None or text == "":
        return
    element = _SUB(parent, _cbc(tag), attrib)
    element.text = text


def _money(parent: etree._Element, name: str, data: EInvoiceData, minor: int) -> None:
    _text(parent, name, data.amount(minor), currencyID=data.currency)


def _tax_category(
    parent: etree._Element,
    name: str,
    category: str,
    rate: Decimal,
    reason: str | None = None,
    code: str | None = None,
    *,
    breakdown: bool = False,
) -> None:
    element = _SUB(parent, _cac(name))
    _text(element, "ID", category)
    if category != _O or breakdown:
        # BR-O-05..07: lines, allowances and charges of category O carry no rate; the
        # breakdown row does (0), which XRechnung requires (BR-DE-14).
        _text(element, "Percent", decimal_text(rate))
    _text(element, "TaxExemptionReasonCode", code)
    _text(element, "TaxExemptionReason", reason)
    _text(_SUB(element, _cac("TaxScheme")), "ID", "VAT")


def _party(parent: etree._Element, role: str, party: Party, data: EInvoiceData) -> None:
    outer = _SUB(parent, _cac(role))
    element = _SUB(outer, _cac("Party"))
    _text(element, "EndpointID", party.endpoint_id, schemeID=party.endpoint_scheme)
    is_seller = role == "AccountingSupplierParty"
    vat_id = None if data.outside_scope else party.vat_id
    if is_seller and data.outside_scope and party.vat_id:
        # BR-CO-26 wants BT-29, BT-30 or BT-31, and BR-O-02 forbids BT-31 here: the VAT
        # number then identifies the seller as a plain seller identifier (BT-29).
        _text(_SUB(element, _cac("PartyIdentification")), "ID", party.vat_id)
    if party.trading_name:
        _text(_SUB(element, _cac("PartyName")), "Name", party.trading_name)
    address = _SUB(element, _cac("PostalAddress"))
    _text(address, "StreetName", party.address_line1)
    _text(address, "AdditionalStreetName", party.address_line2)
    _text(address, "CityName", party.city)
    _text(address, "PostalZone", party.postal_code)
    _text(address, "CountrySubentity", party.region)
    _text(_SUB(address, _cac("Country")), "IdentificationCode", party.country)
    if vat_id:
        scheme = _SUB(element, _cac("PartyTaxScheme"))
        _text(scheme, "CompanyID", vat_id)
        _text(_SUB(scheme, _cac("TaxScheme")), "ID", "VAT")
    if is_seller and party.tax_number:
        scheme = _SUB(element, _cac("PartyTaxScheme"))
        _text(scheme, "CompanyID", party.tax_number)
        _text(_SUB(scheme, _cac("TaxScheme")), "ID", "FC")  # BT-32: not a VAT number
    legal = _SUB(element, _cac("PartyLegalEntity"))
    _text(legal, "RegistrationName", party.name)
    if is_seller:
        _text(legal, "CompanyLegalForm", party.registration)  # BT-33, e.g. "HRB 12345"
    if party.contact_name or party.phone or party.email:
        contact = _SUB(element, _cac("Contact"))
        _text(contact, "Name", party.contact_name)
        _text(contact, "Telephone", party.phone)
        _text(contact, "ElectronicMail", party.email)


def _period(parent: etree._Element, start, end) -> None:
    if start is None and end is None:
        return
    element = _SUB(parent, _cac("InvoicePeriod"))
    _text(element, "StartDate", start.isoformat() if start else None)
    _text(element, "EndDate", end.isoformat() if end else None)


def _payment(parent: etree._Element, data: EInvoiceData) -> None:
    payment = data.payment
    means = _SUB(parent, _cac("PaymentMeans"))
    _text(means, "PaymentMeansCode", payment.means_code, name=payment.means_text)
    _text(means, "PaymentID", payment.remittance)
    if payment.iban:
        account = _SUB(means, _cac("PayeeFinancialAccount"))
        _text(account, "ID", payment.iban)
        _text(account, "Name", payment.account_name)
        if payment.bic:
            _text(_SUB(account, _cac("FinancialInstitutionBranch")), "ID", payment.bic)
    if payment.terms:
        _text(_SUB(parent, _cac("PaymentTerms")), "Note", payment.terms)


def _allowance_charges(parent: etree._Element, data: EInvoiceData) -> None:
    for ac in data.allowance_charges:
        element = _SUB(parent, _cac("AllowanceCharge"))
        _text(element, "ChargeIndicator", "true" if ac.is_charge else "false")
        _text(element, "AllowanceChargeReasonCode", ac.reason_code)
        _text(element, "AllowanceChargeReason", ac.reason)
        if ac.percent is not None and ac.base_minor is not None:
            _text(element, "MultiplierFactorNumeric", decimal_text(ac.percent))
        _money(element, "Amount", data, ac.amount_minor)
        if ac.percent is not None and ac.base_minor is not None:
            _money(element, "BaseAmount", data, ac.base_minor)
        _tax_category(element, "TaxCategory", ac.category, ac.rate)


def _tax_total(parent: etree._Element, data: EInvoiceData) -> None:
    total = _SUB(parent, _cac("TaxTotal"))
    _money(total, "TaxAmount", data, data.totals.tax_minor)
    for row in data.vat:
        _tax_subtotal(total, data, row)


def _tax_subtotal(parent: etree._Element, data: EInvoiceData, row: VatRow) -> None:
    subtotal = _SUB(parent, _cac("TaxSubtotal"))
    _money(subtotal, "TaxableAmount", data, row.taxable_minor)
    _money(subtotal, "TaxAmount", data, row.tax_minor)
    reason, code = (row.exemption_reason, row.exemption_code)
    if row.category == VatCategory.STANDARD.value:
        reason = code = None  # BR-S-10: no exemption reason on standard-rated rows
    _tax_category(subtotal, "TaxCategory", row.category, row.rate, reason, code, breakdown=True)


def _monetary_total(parent: etree._Element, data: EInvoiceData) -> None:
    totals = data.totals
    element = _SUB(parent, _cac("LegalMonetaryTotal"))
    _money(element, "LineExtensionAmount", data, totals.lines_minor)
    _money(element, "TaxExclusiveAmount", data, totals.tax_exclusive_minor)
    _money(element, "TaxInclusiveAmount", data, totals.tax_inclusive_minor)
    if totals.allowances_minor or data.allowance_charges:
        _money(element, "AllowanceTotalAmount", data, totals.allowances_minor)
    if totals.charges_minor or any(ac.is_charge for ac in data.allowance_charges):
        _money(element, "ChargeTotalAmount", data, totals.charges_minor)
    if totals.prepaid_minor:
        _money(element, "PrepaidAmount", data, totals.prepaid_minor)
    if totals.rounding_minor:
        _money(element, "PayableRoundingAmount", data, totals.rounding_minor)
    _money(element, "PayableAmount", data, totals.due_minor)


def _line(parent: etree._Element, data: EInvoiceData, line: Line) -> None:
    credit = data.is_credit_note
    element = _SUB(parent, _cac("CreditNoteLine" if credit else "InvoiceLine"))
    _text(element, "ID", str(line.position))
    _text(
        element,
        "CreditedQuantity" if credit else "InvoicedQuantity",
        decimal_text(line.quantity),
        unitCode=line.unit_code,
    )
    _money(element, "LineExtensionAmount", data, line.net_minor)
    _period(element, line.period_start, line.period_end)
    item = _SUB(element, _cac("Item"))
    _text(item, "Name", line.description)
    _tax_category(item, "ClassifiedTaxCategory", line.category, line.rate)
    price = _SUB(element, _cac("Price"))
    _text(price, "PriceAmount", decimal_text(line.unit_price), currencyID=data.currency)


def check_available(data: EInvoiceData, flavour: str) -> None:
    """Raise :class:`EInvoiceUnavailable` when the rules of ``flavour`` cannot be met.

    Peppol needs an electronic address of both parties (R010, R020) from its EAS list, which
    no longer has e-mail; XRechnung needs the buyer's Leitweg-ID or reference (BR-DE-15) and
    a seller contact with telephone and e-mail (BR-DE-2, BR-DE-6, BR-DE-7).
    """
    if flavour == "xrechnung":
        if not data.buyer_reference:
            raise EInvoiceUnavailable(
                "XRechnung needs the buyer reference (Leitweg-ID) in the billing profile."
            )
        if not (data.seller.phone and data.seller.email):
            raise EInvoiceUnavailable("XRechnung needs the seller's telephone and e-mail address.")
        return
    for role, party in (("seller", data.seller), ("buyer", data.buyer)):
        if not party.has_peppol_address:
            raise EInvoiceUnavailable(
                f"Peppol needs the {role}'s electronic address: a Peppol participant id or "
                "a VAT number."
            )


def ubl_tree(data: EInvoiceData, flavour: str = "peppol") -> etree._Element:
    """The UBL document as an element tree; ``flavour`` is "peppol" or "xrechnung"."""
    credit = data.is_credit_note
    root_ns = NS_CREDIT_NOTE if credit else NS_INVOICE
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit else 'Invoice'}",
        nsmap={None: root_ns, "cac": NS_CAC, "cbc": NS_CBC},
    )
    _text(root, "CustomizationID", _CUSTOMIZATION[flavour])  # BT-24
    _text(root, "ProfileID", PEPPOL_PROFILE)  # BT-23
    _text(root, "ID", data.number)  # BT-1
    _text(root, "IssueDate", data.issue_date.isoformat())  # BT-2
    if not credit and data.due_date:
        _text(root, "DueDate", data.due_date.isoformat())  # BT-9
    _text(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", data.type_code)  # BT-3
    for note in data.notes:
        _text(root, "Note", note)  # BT-22
    _text(root, "DocumentCurrencyCode", data.currency)  # BT-5
    reference = data.buyer_reference if flavour == "xrechnung" else data.routing_reference
    _text(root, "BuyerReference", reference)  # BT-10
    _period(root, data.period_start, data.period_end)  # BG-14
    if data.order_reference:
        _text(_SUB(root, _cac("OrderReference")), "ID", data.order_reference)  # BT-13
    if data.preceding_number:  # BG-3
        ref = _SUB(_SUB(root, _cac("BillingReference")), _cac("InvoiceDocumentReference"))
        _text(ref, "ID", data.preceding_number)
        _text(ref, "IssueDate", data.preceding_date.isoformat() if data.preceding_date else None)
    _party(root, "AccountingSupplierParty", data.seller, data)  # BG-4
    _party(root, "AccountingCustomerParty", data.buyer, data)  # BG-7
    _payment(root, data)  # BG-16, BT-20
    _allowance_charges(root, data)  # BG-20, BG-21
    _tax_total(root, data)  # BT-110, BG-23
    _monetary_total(root, data)  # BG-22
    for line in data.lines:
        _line(root, data, line)  # BG-25
    return root


def ubl_xml(data: EInvoiceData, flavour: str = "peppol") -> bytes:
    """The UBL document as UTF-8 bytes with an XML declaration."""
    return etree.tostring(ubl_tree(data, flavour), xml_declaration=True, encoding="UTF-8")
