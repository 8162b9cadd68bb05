"""Factur-X / ZUGFeRD EN 16931: the invoice PDF as PDF/A-3 with the CII XML embedded.

WeasyPrint writes the PDF/A-3b itself (output intent, embedded fonts, XMP with pdfaid:part 3,
the catalog /AF array); this module adds the ``factur-x.xml`` attachment with its
AFRelationship and the Factur-X XMP properties with their PDF/A extension schema.
"""

from __future__ import annotations

import base64
import datetime as dt

from portal.documents.pdf import data_only_fetcher, render_invoice_pdf
from portal.invoices.models import CreditNote, Invoice

#: Name of the embedded XML (Factur-X 1.0 and ZUGFeRD 2.x).
ATTACHMENT_NAME = "factur-x.xml"
#: The XML is the legally relevant invoice data, the PDF its rendering ("Data" is the
#: relationship Factur-X prescribes for EN 16931 when the PDF is only a visual copy).
AF_RELATIONSHIP = "Data"
FX_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
CONFORMANCE_LEVEL = "EN 16931"

_FX_PROPERTIES = (
    ("DocumentFileName", "name of the embedded XML invoice file"),
    ("DocumentType", "INVOICE"),
    ("Version", "The actual version of the Factur-X XML schema"),
    ("ConformanceLevel", "The conformance level of the embedded Factur-X data"),
)


def _xmp() -> bytes:
    """The fx: properties and their PDF/A extension schema description (PDF/A-3, 6.6.2.3)."""
    properties = "".join(
        '<rdf:li rdf:parseType="Resource">'
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description>"
        "</rdf:li>"
        for name, description in _FX_PROPERTIES
    )
    return (
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:fx="{FX_NAMESPACE}">'
        "<fx:DocumentType>INVOICE</fx:DocumentType>"
        f"<fx:DocumentFileName>{ATTACHMENT_NAME}</fx:DocumentFileName>"
        "<fx:Version>1.0</fx:Version>"
        f"<fx:ConformanceLevel>{CONFORMANCE_LEVEL}</fx:ConformanceLevel>"
        "</rdf:Description>"
        '<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"'
        ' xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"'
        ' xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">'
        '<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">'
        "<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>"
        f"<pdfaSchema:namespaceURI>{FX_NAMESPACE}</pdfaSchema:namespaceURI>"
        "<pdfaSchema:prefix>fx</pdfaSchema:prefix>"
        f"<pdfaSchema:property><rdf:Seq>{properties}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas>"
        "</rdf:Description>"
        "</rdf:RDF>"
    ).encode()


_XMP_URL = "data:application/rdf+xml;base64," + base64.b64encode(_xmp()).decode("ascii")


def facturx_pdf(document: Invoice | CreditNote, xml: bytes, *, locale: str) -> bytes:
    """The document's PDF as PDF/A-3b with ``xml`` (its CII) embedded as factur-x.xml."""
    from weasyprint import Attachment

    # Only issued documents get a Factur-X file, and issuing sets the date.
    assert document.issue_date is not None
    # Dates of the attachment come from the document, not the clock, so that the same
    # document gives the same file specification.
    issued = dt.datetime.combine(document.issue_date, dt.time(), tzinfo=dt.UTC)
    attachment = Attachment(
        url="data:text/xml;base64," + base64.b64encode(xml).decode("ascii"),
        url_fetcher=data_only_fetcher(),
        name=ATTACHMENT_NAME,
        description="Factur-X/ZUGFeRD invoice data (EN 16931)",
        created=issued,
        modified=issued,
        relationship=AF_RELATIONSHIP,
    )
    return render_invoice_pdf(
        document,
        locale=locale,
        pdf_variant="pdf/a-3b",
        attachments=[attachment],
        xmp_metadata=[_XMP_URL],
    )
