"""Gapless document numbers per seller, document type and year."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from portal.invoices.models import DocumentSequence
from portal.invoices.states import DocumentType
from portal.tenancy.models import Seller


def next_number(session: Session, seller: Seller, document_type: DocumentType, year: int) -> str:
    """Take the next number in the caller's transaction.

    The sequence row is locked (FOR UPDATE on PostgreSQL; SQLite has one writer at a time),
    so concurrent finalizations wait instead of sharing a number, and a rolled-back
    transaction gives its number back: the sequence has no gaps.
    """
    where = (
        DocumentSequence.seller_id == seller.id,
        DocumentSequence.document_type == document_type,
        DocumentSequence.year == year,
    )
    if session.get_bind().dialect.name == "postgresql":
        # Two first numbers of a year may race to create the row: let one insert win and
        # the other wait on its lock below.
        session.execute(
            postgresql.insert(DocumentSequence)
            .values(seller_id=seller.id, document_type=document_type, year=year, last_number=0)
            .on_conflict_do_nothing()
        )
    sequence = session.scalars(sa.select(DocumentSequence).where(*where).with_for_update()).first()
    if sequence is None:  # SQLite: one writer at a time, no race
        sequence = DocumentSequence(
            seller_id=seller.id, document_type=document_type, year=year, last_number=0
        )
        session.add(sequence)
    sequence.last_number += 1
    session.flush()
    pattern = (
        seller.invoice_number_format
        if document_type == DocumentType.INVOICE
        else seller.credit_note_number_format
    )
    return pattern.format(year=year, seq=sequence.last_number)
