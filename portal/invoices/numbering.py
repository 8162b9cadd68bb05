"""Gapless document numbers per seller, document type and year."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from portal.db import table_of
from portal.invoices.models import DocumentSequence
from portal.invoices.states import DocumentType
from portal.tenancy.models import Seller


def next_number(session: Session, seller: Seller, document_type: DocumentType, year: int) -> str:
    """Take the next number in the caller's transaction (see :func:`take_numbers`)."""
    return take_numbers(session, seller, document_type, year, 1)[0]


def take_numbers(
    session: Session, seller: Seller, document_type: DocumentType, year: int, count: int
) -> list[str]:
    """Take ``count`` consecutive numbers in the caller's transaction.

    One ``UPDATE … SET last_number = last_number + count … RETURNING`` raises the sequence
    row and locks it until the transaction ends (SQLite has one writer at a time), so
    concurrent finalizations wait instead of sharing a number, and a rolled-back
    transaction gives its numbers back: the sequence has no gaps. A batch costs one
    statement however many numbers it takes.
    """
    if count < 1:
        return []
    table = table_of(DocumentSequence)
    where = (
        table.c.seller_id == seller.id,
        table.c.document_type == document_type,
        table.c.year == year,
    )
    bump = (
        sa.update(table)
        .where(*where)
        .values(last_number=table.c.last_number + count)
        .returning(table.c.last_number)
    )
    last = session.execute(bump).scalar()
    if last is None:  # the year's first number
        row = {"seller_id": seller.id, "document_type": document_type, "year": year}
        if session.get_bind().dialect.name == "postgresql":
            # Two first numbers of a year may race to create the row: let one insert win
            # and the other wait on its lock in the UPDATE.
            session.execute(
                postgresql.insert(table).values(**row, last_number=0).on_conflict_do_nothing()
            )
            last = session.execute(bump).scalar_one()
        else:  # SQLite: one writer at a time, no race
            session.execute(sa.insert(table).values(**row, last_number=count))
            last = count
    pattern = (
        seller.invoice_number_format
        if document_type == DocumentType.INVOICE
        else seller.credit_note_number_format
    )
    return [pattern.format(year=year, seq=seq) for seq in range(last - count + 1, last + 1)]
