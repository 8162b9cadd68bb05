"""Reading plans, prices and subscriptions."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import Subscription
from portal.tenancy.models import Tenant


def company_subscriptions(session: Session, tenant: Tenant) -> list[Subscription]:
    """The company's subscriptions, the newest start first."""
    return list(
        session.scalars(
            sa.select(Subscription)
            .where(Subscription.tenant_id == tenant.id)
            .order_by(Subscription.started_on.desc())
        )
    )
