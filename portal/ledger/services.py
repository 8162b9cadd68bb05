"""Writing and reading ledger movements."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.domain.money import Money
from portal.ledger.models import LedgerMovement, MovementKind
from portal.tenancy.models import Tenant


def record_movement(
    session: Session,
    tenant: Tenant,
    *,
    kind: MovementKind,
    amount: Money,
    description: str,
    occurred_at: dt.datetime,
    **links: int | None,
) -> LedgerMovement:
    """Append a signed movement (positive: the tenant owes more)."""
    movement = LedgerMovement(
        tenant_id=tenant.id,
        kind=kind,
        amount_minor=amount.minor,
        currency=amount.currency,
        description=description,
        occurred_at=occurred_at,
        **links,
    )
    session.add(movement)
    session.flush()
    return movement


def balance(session: Session, tenant: Tenant) -> Money:
    """The tenant's balance: the sum of its movements in its currency."""
    total = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(LedgerMovement.amount_minor), 0)).where(
            LedgerMovement.tenant_id == tenant.id, LedgerMovement.currency == tenant.currency
        )
    ).scalar_one()
    return Money(int(total), tenant.currency)
