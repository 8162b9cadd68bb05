"""Reads of the account API whose subject packages lie outside the API's change.

Each belongs in its subject's ``queries.py`` (named on the function), beside the other
reads of that subject; they are here so that the views hold no SQL until then.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import Subscription, SubscriptionStatus
from portal.db import scoped
from portal.ledger.models import LedgerMovement
from portal.tenancy.models import Tenant


def current_subscription(session: Session, tenant: Tenant) -> Subscription | None:
    """The tenant's first subscription that is not canceled (belongs in catalog/queries.py)."""
    return session.scalars(
        scoped(Subscription, tenant)
        .where(Subscription.status != SubscriptionStatus.CANCELED)
        .order_by(Subscription.id)
    ).first()


def movement_page(
    session: Session, tenant: Tenant, *, limit: int, offset: int = 0
) -> tuple[list[LedgerMovement], int]:
    """One page of the tenant's ledger movements, newest first, and the total count
    (belongs in ledger/queries.py)."""
    query = scoped(LedgerMovement, tenant)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    query = query.order_by(LedgerMovement.occurred_at.desc(), LedgerMovement.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset))), int(total)
