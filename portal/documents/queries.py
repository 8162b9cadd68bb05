"""Reading stored documents, for the admin console."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.documents.models import StoredDocument
from portal.invoices.models import Invoice
from portal.tenancy.models import Tenant


def latest_stored_documents(session: Session, *, limit: int) -> list[sa.Row]:
    """``(document, invoice, company name)`` of the newest stored documents of every company."""
    return list(
        session.execute(
            sa.select(StoredDocument, Invoice, Tenant.name)
            .join(Invoice, Invoice.id == StoredDocument.invoice_id)
            .join(Tenant, Tenant.id == Invoice.tenant_id)
            .order_by(StoredDocument.created_at.desc(), StoredDocument.id.desc())
            .limit(limit)
        )
    )
