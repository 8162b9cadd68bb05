"""Issued documents as they were rendered: bytes stored once, never rendered again.

A finalized invoice or an issued credit note is frozen; its PDF and e-invoices are rendered
on first request and kept here so a document never changes after it is issued (a new
WeasyPrint, font or template would otherwise alter an issued document).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, IdMixin, JSONType, TimestampMixin


class StoredDocument(IdMixin, TimestampMixin, Base):
    """One rendering of one issued invoice or credit note in one format."""

    __tablename__ = "stored_documents"
    __table_args__ = (
        sa.UniqueConstraint("invoice_id", "format", "locale"),
        sa.UniqueConstraint("credit_note_id", "format", "locale"),
        sa.CheckConstraint("(invoice_id IS NULL) <> (credit_note_id IS NULL)", name="one_document"),
    )

    #: The invoice rendered (exactly one of invoice_id and credit_note_id is set).
    invoice_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    #: The credit note rendered.
    credit_note_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("credit_notes.id", ondelete="CASCADE"), index=True
    )
    #: Key of the format in the documents registry (pdf, ubl, xrechnung, cii, facturx…).
    format: Mapped[str] = mapped_column(sa.String(20))
    #: Language the document was rendered in (ISO 639-1); "" for language-neutral XML.
    locale: Mapped[str] = mapped_column(sa.String(10), default="")
    #: Media type served with the bytes.
    media_type: Mapped[str] = mapped_column(sa.String(100))
    #: File name offered for download.
    filename: Mapped[str] = mapped_column(sa.String(200))
    #: The rendered bytes.
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    #: SHA-256 of ``content`` (hex), to show the document is the one issued.
    sha256: Mapped[str] = mapped_column(sa.String(64))
    #: Validation findings when it was stored (JSON list; empty when valid).
    validation: Mapped[list | None] = mapped_column(JSONType)
