"""Usage use cases: recording a consumption once per idempotency key."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.tenancy.models import Tenant
from portal.usage.models import UsageRecord
from portal.usage.queries import consumption_by_key


class ConsumptionConflict(Exception):
    """The idempotency key was used for a consumption with other data; nothing was written."""

    def __init__(self, idempotency_key: str):
        super().__init__("This idempotency key was used for a different consumption.")
        self.idempotency_key = idempotency_key
        self.message = str(self)


def record_consumption(
    session: Session,
    tenant: Tenant,
    *,
    metric: str,
    quantity: Decimal,
    occurred_at: dt.datetime,
    idempotency_key: str,
    properties: dict[str, Any],
) -> UsageRecord:
    """The tenant's usage record under ``idempotency_key``: written now, or the earlier one.

    Repeating a key with the same metric, quantity and time gives the first record back
    (its properties are not compared), so a retried request is billed once; the same key
    with other data is refused, so a client bug is not billed silently. Flushes, never
    commits.

    :param occurred_at: in UTC.
    :raise ConsumptionConflict: the key was used for another consumption.
    """
    existing = consumption_by_key(session, tenant, idempotency_key)
    if existing is None:
        record = UsageRecord(
            tenant_id=tenant.id,
            metric=metric,
            quantity=quantity,
            occurred_at=occurred_at,
            idempotency_key=idempotency_key,
            properties=dict(properties),
        )
        try:
            with session.begin_nested():  # a savepoint: a lost race undoes this row only
                session.add(record)
                session.flush()
        except sa.exc.IntegrityError:  # the same key, sent twice at once: the other won
            existing = consumption_by_key(session, tenant, idempotency_key)
            if existing is None:  # not the key's race: some other constraint refused it
                raise
        else:
            session.refresh(record)  # the values as stored (e.g. the quantity's scale)
            return record
    same = (
        existing.metric == metric
        and existing.quantity == quantity
        and existing.occurred_at == occurred_at
    )
    if not same:
        raise ConsumptionConflict(idempotency_key)
    return existing
