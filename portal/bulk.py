"""Bulk SQL for batches of thousands of rows: ids from the sequences, COPY, ``= ANY``.

The invoice run inserts and updates rows by the thousand; these helpers keep that to a
fixed number of statements on PostgreSQL and fall back to plain SQL elsewhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import QueryableAttribute, Session


def _insert_rows(session: Session, table: sa.Table, rows: list[dict]) -> list[int]:
    """Insert ``rows`` (each given its ``id``) and return their ids, in order.

    PostgreSQL: ids from the sequence in one query, then :func:`_write_rows`; elsewhere
    INSERT … RETURNING in parameter order.
    """
    if session.get_bind().dialect.name == "postgresql":
        ids = session.scalars(
            sa.select(
                sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id"))
            ).select_from(sa.func.generate_series(1, len(rows)))
        ).all()
        for row, new_id in zip(rows, ids, strict=True):
            row["id"] = new_id
        _write_rows(session, table, rows)
        return list(ids)
    ids = session.scalars(
        sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    ).all()
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id
    return list(ids)


def _write_rows(session: Session, table: sa.Table, rows: list[dict]) -> None:
    """Insert ``rows`` (dicts with the same keys): COPY on PostgreSQL with psycopg, else an
    executemany INSERT.

    COPY costs the server and the client a fraction of one INSERT per row; the values go
    through the columns' own bind processors first, so they are checked and converted
    exactly as an INSERT would (exact decimals, UTC times, enums by value, JSONB). Row
    triggers (the freeze guard) and column defaults apply to COPY as to INSERT.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        session.execute(sa.insert(table), rows)
        return
    names = list(rows[0])
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    converters = [(name, processor) for name, processor in zip(names, processors, strict=True)]
    quote = dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(name) for name in names)}) FROM STDIN"
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None  # a checked-out connection has its driver's
    cursor = driver_connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(
                    [
                        row[name]
                        if processor is None or row[name] is None
                        else processor(row[name])
                        for name, processor in converters
                    ]
                )
    finally:
        cursor.close()


def among(
    session: Session, column: sa.ColumnElement | QueryableAttribute, ids: Iterable[int]
) -> sa.ColumnElement[bool]:
    """``column IN ids`` for a batch of integer keys.

    On PostgreSQL ``column = ANY(:ids)``: one array parameter, so the statement's text is
    the same for every batch (cached by SQLAlchemy and psycopg, prepared by the server)
    instead of hundreds of placeholders parsed again for each batch.
    """
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, ids, type_=postgresql.ARRAY(sa.BigInteger)))
    return column.in_(ids)


def assign_ids(session: Session, objects: Iterable[object]) -> None:
    """Give new rows their primary keys from the sequences, one query per table (PostgreSQL).

    With its key known, the ORM inserts a batch as one prepared executemany (psycopg
    pipelines it) instead of INSERT … RETURNING statements of thousands of parameters
    that the driver parses row by row. Elsewhere this does nothing.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    by_table: dict[sa.Table, list] = defaultdict(list)
    for obj in objects:
        if getattr(obj, "id", None) is None:
            by_table[sa.inspect(obj, raiseerr=True).mapper.local_table].append(obj)
    for table, rows in by_table.items():
        ids = session.scalars(
            sa.select(
                sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id"))
            ).select_from(sa.func.generate_series(1, len(rows)))
        ).all()
        for obj, new_id in zip(rows, ids, strict=True):
            obj.id = new_id
