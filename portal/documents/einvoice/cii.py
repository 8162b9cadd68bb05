"""UN/CEFACT Cross Industry Invoice (CII D16B) in the EN 16931 profile (Factur-X EN 16931).

The same XML is the stand-alone "cii" format and the ``factur-x.xml`` inside the Factur-X /
ZUGFeRD PDF. Element order follows the D16B schema; comments name the EN 16931 terms.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from lxml import etree

from portal.documents.einvoice.model import EInvoiceData, Line, Party, decimal_text
from portal.invoices.states import VatCategory

NS_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NS_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
NS_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NS_QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"

#: BT-24: EN 16931 itself, which is also the guideline id of the Factur-X EN 16931 profile.
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"

_O = VatCategory.OUTSIDE_SCOPE.value
_S = VatCategory.STANDARD.value
_SUB = etree.SubElement


def _ram(name: str) -> str:
    return f"{{{NS_RAM}}}{name}"


def _rsm(name: str) -> str:
    return f"{{{NS_RSM}}}{name}"


def _text(parent: etree._Element, tag: str, text: str | None, /, **attrib: str) -> None:
    """A ram element, left out when empty."""
    if text is None or text == "":
        return
    element = _SUB(parent, _ram(tag), attrib)
    element.text = text


def _date(parent: etree._Element, name: str, day: dt.date, udt: bool = True) -> None:
    """A date in format 102 (CCYYMMDD)."""
    ns = NS_UDT if udt else NS_QDT
    element = _SUB(_SUB(parent, _ram(name)), f"{{{ns}}}DateTimeString", format="102")
    element.text = day.strftime("%Y%m%d")


def _period(parent: etree._Element, start: dt.date | None, end: dt.date | None) -> None:
    if start is None and end is None:
        return
    element = _SUB(parent, _ram("BillingSpecifiedPeriod"))
    if start:
        _date(element, "StartDateTime", start)
    if end:
        _date(element, "EndDateTime", end)


def _trade_tax(
    parent: etree._Element,
    name: str,
    category: str,
    rate: Decimal,
    *,
    data: EInvoiceData | None = None,
    taxable_minor: int | None = None,
    tax_minor: int | None = None,
    reason: str | None = None,
    code: str | None = None,
) -> None:
    element = _SUB(parent, _ram(name))
    if tax_minor is not None and data is not None:
        _text(element, "CalculatedAmount", data.amount(tax_minor))  # BT-117
    _text(element, "TypeCode", "VAT")
    _text(element, "ExemptionReason", reason)  # BT-120
    if taxable_minor is not None and data is not None:
        _text(element, "BasisAmount", data.amount(taxable_minor))  # BT-116
    _text(element, "CategoryCode", category)  # BT-118 / BT-151 / BT-95 / BT-102
    _text(element, "ExemptionReasonCode", code)  # BT-121
    if category != _O:  # category O carries no rate
        _text(element, "RateApplicablePercent", decimal_text(rate))


def _party(parent: etree._Element, role: str, party: Party, data: EInvoiceData) -> None:
    element = _SUB(parent, _ram(role))
    is_seller = role == "SellerTradeParty"
    if is_seller and data.outside_scope and party.vat_id:
        # BR-CO-26 needs BT-29/30/31, BR-O-02 forbids BT-31: the VAT number as BT-29.
        _text(element, "ID", party.vat_id)
    _text(element, "Name", party.name)  # BT-27 / BT-44
    if is_seller and party.registration:
        _text(element, "Description", party.registration)  # BT-33
    if party.trading_name:
        legal = _SUB(element, _ram("SpecifiedLegalOrganization"))
        _text(legal, "TradingBusinessName", party.trading_name)  # BT-28
    if party.contact_name or party.phone or party.email:
        contact = _SUB(element, _ram("DefinedTradeContact"))
        _text(contact, "PersonName", party.contact_name)
        if party.phone:
            _text(
                _SUB(contact, _ram("TelephoneUniversalCommunication")),
                "CompleteNumber",
                party.phone,
            )
        if party.email:
            _text(_SUB(contact, _ram("EmailURIUniversalCommunication")), "URIID", party.email)
    address = _SUB(element, _ram("PostalTradeAddress"))
    _text(address, "PostcodeCode", party.postal_code)
    _text(address, "LineOne", party.address_line1)
    _text(address, "LineTwo", party.address_line2)
    _text(address, "CityName", party.city)
    _text(address, "CountryID", party.country)
    _text(address, "CountrySubDivisionName", party.region)
    if party.endpoint_id:  # BT-34 / BT-49
        uri = _SUB(element, _ram("URIUniversalCommunication"))
        _text(uri, "URIID", party.endpoint_id, schemeID=party.endpoint_scheme)
    if party.vat_id and not data.outside_scope:
        _text(_SUB(element, _ram("SpecifiedTaxRegistration")), "ID", party.vat_id, schemeID="VA")
    if is_seller and party.tax_number:
        registration = _SUB(element, _ram("SpecifiedTaxRegistration"))
        _text(registration, "ID", party.tax_number, schemeID="FC")  # BT-32


def _line(parent: etree._Element, data: EInvoiceData, line: Line) -> None:
    item = _SUB(parent, _ram("IncludedSupplyChainTradeLineItem"))
    _text(_SUB(item, _ram("AssociatedDocumentLineDocument")), "LineID", str(line.position))
    _text(_SUB(item, _ram("SpecifiedTradeProduct")), "Name", line.description)  # BT-153
    agreement = _SUB(item, _ram("SpecifiedLineTradeAgreement"))
    price = _SUB(agreement, _ram("NetPriceProductTradePrice"))
    _text(price, "ChargeAmount", decimal_text(line.unit_price))  # BT-146
    delivery = _SUB(item, _ram("SpecifiedLineTradeDelivery"))
    _text(delivery, "BilledQuantity", decimal_text(line.quantity), unitCode=line.unit_code)
    settlement = _SUB(item, _ram("SpecifiedLineTradeSettlement"))
    _trade_tax(settlement, "ApplicableTradeTax", line.category, line.rate)
    _period(settlement, line.period_start, line.period_end)  # BG-26
    summation = _SUB(settlement, _ram("SpecifiedTradeSettlementLineMonetarySummation"))
    _text(summation, "LineTotalAmount", data.amount(line.net_minor))  # BT-131


def _payment_means(parent: etree._Element, data: EInvoiceData) -> None:
    payment = data.payment
    means = _SUB(parent, _ram("SpecifiedTradeSettlementPaymentMeans"))
    _text(means, "TypeCode", payment.means_code)  # BT-81
    _text(means, "Information", payment.means_text)  # BT-82
    if payment.iban:
        account = _SUB(means, _ram("PayeePartyCreditorFinancialAccount"))
        _text(account, "IBANID", payment.iban)  # BT-84
        _text(account, "AccountName", payment.account_name)  # BT-85
        if payment.bic:
            institution = _SUB(means, _ram("PayeeSpecifiedCreditorFinancialInstitution"))
            _text(institution, "BICID", payment.bic)  # BT-86


def _allowance_charges(parent: etree._Element, data: EInvoiceData) -> None:
    for ac in data.allowance_charges:
        element = _SUB(parent, _ram("SpecifiedTradeAllowanceCharge"))
        indicator = _SUB(_SUB(element, _ram("ChargeIndicator")), f"{{{NS_UDT}}}Indicator")
        indicator.text = "true" if ac.is_charge else "false"
        if ac.percent is not None and ac.base_minor is not None:
            _text(element, "CalculationPercent", decimal_text(ac.percent))
            _text(element, "BasisAmount", data.amount(ac.base_minor))
        _text(element, "ActualAmount", data.amount(ac.amount_minor))
        _text(element, "ReasonCode", ac.reason_code)
        _text(element, "Reason", ac.reason)
        _trade_tax(element, "CategoryTradeTax", ac.category, ac.rate)


def _summation(parent: etree._Element, data: EInvoiceData) -> None:
    totals = data.totals
    element = _SUB(parent, _ram("SpecifiedTradeSettlementHeaderMonetarySummation"))
    _text(element, "LineTotalAmount", data.amount(totals.lines_minor))  # BT-106
    if totals.charges_minor or any(ac.is_charge for ac in data.allowance_charges):
        _text(element, "ChargeTotalAmount", data.amount(totals.charges_minor))  # BT-108
    if totals.allowances_minor or data.allowance_charges:
        _text(element, "AllowanceTotalAmount", data.amount(totals.allowances_minor))  # BT-107
    _text(element, "TaxBasisTotalAmount", data.amount(totals.tax_exclusive_minor))  # BT-109
    _text(
        element, "TaxTotalAmount", data.amount(totals.tax_minor), currencyID=data.currency
    )  # BT-110
    if totals.rounding_minor:
        _text(element, "RoundingAmount", data.amount(totals.rounding_minor))  # BT-114
    _text(element, "GrandTotalAmount", data.amount(totals.tax_inclusive_minor))  # BT-112
    if totals.prepaid_minor:
        _text(element, "TotalPrepaidAmount", data.amount(totals.prepaid_minor))  # BT-113
    _text(element, "DuePayableAmount", data.amount(totals.due_minor))  # BT-115


def _settlement(parent: etree._Element, data: EInvoiceData) -> None:
    settlement = _SUB(parent, _ram("ApplicableHeaderTradeSettlement"))
    _text(settlement, "PaymentReference", data.payment.remittance)  # BT-83
    _text(settlement, "InvoiceCurrencyCode", data.currency)  # BT-5
    _payment_means(settlement, data)
    for row in data.vat:
        standard = row.category == _S
        _trade_tax(
            settlement,
            "ApplicableTradeTax",
            row.category,
            row.rate,
            data=data,
            taxable_minor=row.taxable_minor,
            tax_minor=row.tax_minor,
            reason=None if standard else row.exemption_reason,
            code=None if standard else row.exemption_code,
        )
    _period(settlement, data.period_start, data.period_end)  # BG-14
    _allowance_charges(settlement, data)
    if data.payment.terms or data.due_date:
        terms = _SUB(settlement, _ram("SpecifiedTradePaymentTerms"))
        _text(terms, "Description", data.payment.terms)  # BT-20
        if data.due_date:
            _date(terms, "DueDateDateTime", data.due_date)  # BT-9
    _summation(settlement, data)
    if data.preceding_number:  # BG-3
        reference = _SUB(settlement, _ram("InvoiceReferencedDocument"))
        _text(reference, "IssuerAssignedID", data.preceding_number)
        if data.preceding_date:
            _date(reference, "FormattedIssueDateTime", data.preceding_date, udt=False)


def cii_tree(data: EInvoiceData) -> etree._Element:
    """The CII document as an element tree."""
    root = etree.Element(
        _rsm("CrossIndustryInvoice"),
        nsmap={"rsm": NS_RSM, "ram": NS_RAM, "udt": NS_UDT, "qdt": NS_QDT},
    )
    context = _SUB(root, _rsm("ExchangedDocumentContext"))
    business = _SUB(context, _ram("BusinessProcessSpecifiedDocumentContextParameter"))
    _text(business, "ID", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0")  # BT-23
    guideline = _SUB(context, _ram("GuidelineSpecifiedDocumentContextParameter"))
    _text(guideline, "ID", EN16931_GUIDELINE)  # BT-24
    document = _SUB(root, _rsm("ExchangedDocument"))
    _text(document, "ID", data.number)  # BT-1
    _text(document, "TypeCode", data.type_code)  # BT-3
    _date(document, "IssueDateTime", data.issue_date)  # BT-2
    for note in data.notes:
        _text(_SUB(document, _ram("IncludedNote")), "Content", note)  # BT-22
    transaction = _SUB(root, _rsm("SupplyChainTradeTransaction"))
    for line in data.lines:
        _line(transaction, data, line)
    agreement = _SUB(transaction, _ram("ApplicableHeaderTradeAgreement"))
    _text(agreement, "BuyerReference", data.routing_reference)  # BT-10
    _party(agreement, "SellerTradeParty", data.seller, data)  # BG-4
    _party(agreement, "BuyerTradeParty", data.buyer, data)  # BG-7
    if data.order_reference:
        order = _SUB(agreement, _ram("BuyerOrderReferencedDocument"))
        _text(order, "IssuerAssignedID", data.order_reference)  # BT-13
    _SUB(transaction, _ram("ApplicableHeaderTradeDelivery"))
    _settlement(transaction, data)
    return root


def cii_xml(data: EInvoiceData) -> bytes:
    """The CII document as UTF-8 bytes with an XML declaration."""
    return etree.tostring(cii_tree(data), xml_declaration=True, encoding="UTF-8")
