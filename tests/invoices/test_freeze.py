"""Issued invoices are frozen: the ORM refuses changes everywhere, PostgreSQL refuses SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.invoices.errors import DocumentFrozen
from portal.invoices.freeze import FROZEN_INVOICE_COLUMNS
from portal.invoices.lifecycle import mark_sent
from portal.invoices.models import Invoice, InvoiceLine
from portal.invoices.states import LineKind
from tests.conftest import ON_POSTGRES
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import TenantFactory

NEW_VALUES = {
    "tenant_id": None,
    "seller_id": None,
    "number": "X-1",
    "kind": "manual",
    "currency": "USD",
    "period_start": dt.date(2020, 1, 1),
    "period_end": dt.date(2030, 1, 1),
    "issue_date": dt.date(2026, 10, 2),
    "due_date": dt.date(2027, 1, 1),
    "buyer_reference": "changed",
    "purchase_order": "changed",
    "note": "changed",
    "lines_total_minor": 1,
    "allowance_total_minor": 1,
    "charge_total_minor": 1,
    "tax_exclusive_minor": 1,
    "tax_minor": 1,
    "tax_inclusive_minor": 1,
    "prepaid_minor": 1,
    "rounding_minor": 1,
    "amount_due_minor": 1,
    "seller_snapshot": {"legal_name": "Other"},
    "buyer_snapshot": {"company_name": "Other"},
    "language": "fr",
    "finalized_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
}


@pytest.fixture
def issued(app, session):
    tenant = TenantFactory()
    other = TenantFactory()  # another seller too
    invoice = make_invoice(tenant)
    session.commit()
    NEW_VALUES["tenant_id"] = other.id
    NEW_VALUES["seller_id"] = other.seller_id
    return invoice


def test_every_frozen_column_has_a_test_value():
    assert set(NEW_VALUES) == set(FROZEN_INVOICE_COLUMNS)


@pytest.mark.parametrize("column", FROZEN_INVOICE_COLUMNS)
def test_orm_refuses_changes_to_printed_columns(issued, session, column):
    setattr(issued, column, NEW_VALUES[column])
    with pytest.raises(DocumentFrozen, match=column):
        session.flush()
    session.rollback()


def test_orm_refuses_line_changes_and_deletion(issued, session):
    issued.lines[0].description = "changed"
    with pytest.raises(DocumentFrozen):
        session.flush()
    session.rollback()
    session.add(
        InvoiceLine(
            tenant_id=issued.tenant_id,
            invoice_id=issued.id,
            position=9,
            kind=LineKind.MANUAL,
            description="extra",
            quantity=Decimal(1),
            unit_price=Decimal(1),
            net_amount_minor=100,
        )
    )
    with pytest.raises(DocumentFrozen):
        session.flush()
    session.rollback()
    session.delete(issued)
    with pytest.raises(DocumentFrozen):
        session.flush()
    session.rollback()


def test_lifecycle_columns_still_change(issued, session):
    mark_sent(session, issued)
    issued.pdf_url = "https://files.example/invoice.pdf"
    issued.attempt_count = 2
    session.commit()
    assert session.get(Invoice, issued.id).status == "sent"


def test_drafts_change_freely(app, session):
    draft = make_invoice(TenantFactory(), finalize=False)
    session.commit()
    draft.note = "Thanks!"
    draft.lines[0].description = "Platform (renamed)"
    session.commit()
    session.delete(draft)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 0


@pytest.mark.skipif(not ON_POSTGRES, reason="the SQL triggers exist on PostgreSQL")
@pytest.mark.parametrize("column", FROZEN_INVOICE_COLUMNS)
def test_postgres_refuses_sql_changes_to_printed_columns(issued, column):
    value = NEW_VALUES[column]
    table = Invoice.__table__
    with pytest.raises(sa.exc.IntegrityError, match="frozen"):
        with db.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == issued.id).values({column: value}))


@pytest.mark.skipif(not ON_POSTGRES, reason="the SQL triggers exist on PostgreSQL")
def test_postgres_refuses_sql_on_lines_and_deletes(issued):
    statements = [
        f"UPDATE invoice_lines SET description = 'x' WHERE invoice_id = {issued.id}",
        f"DELETE FROM invoice_lines WHERE invoice_id = {issued.id}",
        f"DELETE FROM invoice_vat_breakdowns WHERE invoice_id = {issued.id}",
        f"DELETE FROM invoices WHERE id = {issued.id}",
    ]
    for statement in statements:
        with pytest.raises(sa.exc.IntegrityError):
            with db.engine.begin() as conn:
                conn.execute(sa.text(statement))
    with db.engine.begin() as conn:  # lifecycle columns are not frozen
        conn.execute(sa.text(f"UPDATE invoices SET status = 'sent' WHERE id = {issued.id}"))
