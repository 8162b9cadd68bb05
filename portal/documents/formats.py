"""The registry of document formats and the one entry point that renders and stores them.

Pages, the JSON APIs and e-mails call :func:`render_document`. An issued invoice or credit
note is rendered once per format (and language, for PDFs) and kept in ``stored_documents``
with its validation findings, so a document never changes after it is issued; drafts are
rendered on the fly and only as PDF.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.documents.einvoice.cii import cii_xml
from portal.documents.einvoice.facturx import facturx_pdf
from portal.documents.einvoice.model import EInvoiceUnavailable, einvoice_data, is_issued
from portal.documents.einvoice.ubl import check_available, ubl_xml
from portal.documents.models import StoredDocument
from portal.documents.pdf import document_locale, render_invoice_pdf
from portal.documents.validation import official_validator, validate_document
from portal.invoices.models import CreditNote, Invoice

PDF = "application/pdf"
XML = "application/xml"


@dataclass(frozen=True)
class DocumentFormat:
    """One downloadable format of an invoice or credit note."""

    #: Registry key, as in ``?format=``.
    key: str
    #: Human label (a proper name: not translated).
    label: str
    #: Media type served with the bytes.
    media_type: str
    #: File extension without the dot.
    extension: str
    #: Structured EN 16931 invoice (only issued documents have one).
    is_einvoice: bool
    #: Rendered in a language (PDFs) rather than language-neutral (XML).
    localized: bool
    #: Key the rendering is stored under: zugferd and facturx are the same file.
    storage_key: str
    #: Suffix of the file name after the document number ("" for the plain PDF).
    suffix: str

    def filename(self, document: Invoice | CreditNote) -> str:
        """The download name, e.g. "INV-2026-00001-xrechnung.xml"."""
        stem = document.number or f"draft-{document.public_id}"
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")
        return f"{stem}{'-' + self.suffix if self.suffix else ''}.{self.extension}"


FORMATS: dict[str, DocumentFormat] = {
    f.key: f
    for f in (
        DocumentFormat("pdf", "PDF", PDF, "pdf", False, True, "pdf", ""),
        DocumentFormat(
            "ubl", "UBL 2.1 (Peppol BIS Billing 3.0)", XML, "xml", True, False, "ubl", "ubl"
        ),
        DocumentFormat(
            "xrechnung", "XRechnung 3.0 (UBL)", XML, "xml", True, False, "xrechnung", "xrechnung"
        ),
        DocumentFormat("cii", "UN/CEFACT CII (EN 16931)", XML, "xml", True, False, "cii", "cii"),
        DocumentFormat(
            "zugferd", "ZUGFeRD 2 (EN 16931)", PDF, "pdf", True, True, "facturx", "zugferd"
        ),
        DocumentFormat(
            "facturx", "Factur-X (EN 16931)", PDF, "pdf", True, True, "facturx", "facturx"
        ),
    )
}


def supported_formats() -> list[str]:
    """The registry keys, in display order."""
    return list(FORMATS)


class UnknownFormat(ValueError):
    """A format that is not in the registry was asked for."""

    def __init__(self, fmt: str):
        self.supported: list[str] = supported_formats()
        super().__init__(f"unknown format {fmt!r}; supported: {', '.join(self.supported)}")
        self.format = fmt


class DocumentNotAvailable(Exception):
    """The document exists but not in this format; ``reason`` says why, for humans."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class RenderedDocument:
    """Bytes to send, with their media type and download name."""

    content: bytes
    media_type: str
    filename: str


def get_format(fmt: str) -> DocumentFormat:
    """The registry entry of ``fmt`` (case-insensitive).

    :raise UnknownFormat: when there is none.
    """
    spec = FORMATS.get((fmt or "").strip().lower())
    if spec is None:
        raise UnknownFormat(fmt)
    return spec


def _render(
    session: Session, document: Invoice | CreditNote, spec: DocumentFormat, locale: str
) -> bytes:
    """The bytes of ``document`` in ``spec``; e-invoice rules raise DocumentNotAvailable."""
    if spec.key == "pdf":
        return render_invoice_pdf(document, locale=locale)

    try:
        data = einvoice_data(session, document)
        if spec.storage_key in ("ubl", "xrechnung"):
            flavour = "peppol" if spec.storage_key == "ubl" else "xrechnung"
            check_available(data, flavour)
            return ubl_xml(data, flavour)
        if spec.storage_key == "cii":
            return cii_xml(data)
        return facturx_pdf(document, cii_xml(data), locale=locale)
    except EInvoiceUnavailable as exc:
        raise DocumentNotAvailable(exc.reason) from exc


def _owner(document: Invoice | CreditNote) -> dict:
    if isinstance(document, CreditNote):
        return {"credit_note_id": document.id}
    return {"invoice_id": document.id}


def _find_stored(session: Session, owner: dict, key: str, locale: str) -> StoredDocument | None:
    ((column, value),) = owner.items()
    return session.scalars(
        sa.select(StoredDocument).where(
            getattr(StoredDocument, column) == value,
            StoredDocument.format == key,
            StoredDocument.locale == locale,
        )
    ).first()


def _validator_setting() -> str | None:
    """EINVOICE_VALIDATOR from the app config when there is an app, else the environment."""
    try:
        from flask import current_app

        return current_app.config.get("EINVOICE_VALIDATOR")
    except (ImportError, RuntimeError):
        return None


def _findings(content: bytes, key: str) -> list[dict]:
    validator = official_validator(_validator_setting())
    return [f.as_dict() for f in validate_document(content, key, validator=validator)]


def _store(
    session: Session,
    document: Invoice | CreditNote,
    spec: DocumentFormat,
    locale: str,
    content: bytes,
) -> StoredDocument:
    """Insert the rendering; if a concurrent request stored it first, return theirs."""
    owner = _owner(document)
    row = StoredDocument(
        **owner,
        format=spec.storage_key,
        locale=locale,
        media_type=spec.media_type,
        filename=FORMATS[spec.storage_key].filename(document),
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        validation=_findings(content, spec.storage_key),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another transaction stored it between our read and our insert: theirs is the one.
        existing = _find_stored(session, owner, spec.storage_key, locale)
        if existing is None:
            raise
        return existing
    return row


def render_document(
    session: Session, document: Invoice | CreditNote, fmt: str, locale: str | None = None
) -> RenderedDocument:
    """``document`` in format ``fmt``: stored bytes if issued and rendered before.

    Issued documents are rendered on the first call and stored (flushed; the caller commits)
    with their validation findings; later calls return the stored bytes unchanged. Drafts
    are rendered on the fly, never stored, and have no e-invoice.

    :param locale: language of PDFs; defaults to the document's language. XML ignores it.
    :raise UnknownFormat: for a key not in :data:`FORMATS`.
    :raise DocumentNotAvailable: for an e-invoice of a draft, or one whose rules cannot be met
        (e.g. XRechnung without a Leitweg-ID).
    """
    spec = get_format(fmt)
    language = document_locale(locale or document.language) if spec.localized else ""
    if not is_issued(document):
        if spec.is_einvoice:
            raise DocumentNotAvailable("A draft has no e-invoice: it gets one when it is issued.")
        return RenderedDocument(
            _render(session, document, spec, language), spec.media_type, spec.filename(document)
        )
    stored = _find_stored(session, _owner(document), spec.storage_key, language)
    if stored is None:
        content = _render(session, document, spec, language)
        stored = _store(session, document, spec, language, content)
    return RenderedDocument(stored.content, spec.media_type, spec.filename(document))


def stored_validation(
    session: Session, document: Invoice | CreditNote
) -> list[tuple[StoredDocument, list[dict]]]:
    """The stored renderings of ``document`` with their findings (for an admin report)."""
    ((column, value),) = _owner(document).items()
    rows = session.scalars(
        sa.select(StoredDocument)
        .where(getattr(StoredDocument, column) == value)
        .order_by(StoredDocument.format, StoredDocument.locale)
    )
    return [(row, list(row.validation or [])) for row in rows]
