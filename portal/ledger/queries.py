"""Reading the ledger: a tenant's movements, page by page."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import scoped
from portal.ledger.models import LedgerMovement
from portal.tenancy.models import Tenant


def movement_page(
    session: Session, tenant: Tenant, *, limit: int, offset: int = 0
) -> tuple[list[LedgerMovement], int]:
    """One page of the tenant's ledger movements, newest first, and the total count
    ."""
    query = scoped(LedgerMovement, tenant)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    query = query.order_by(LedgerMovement.occurred_at.desc(), LedgerMovement.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset))), int(total)
