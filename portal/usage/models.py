"""Models of usage records (consumptions) and quotas."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import (
    Base,
    IdMixin,
    JSONType,
    PublicIdMixin,
    Quantity,
    TenantMixin,
    TimestampMixin,
    UTCDateTime,
    utcnow,
)


class UsageRecord(IdMixin, PublicIdMixin, TenantMixin, Base):
    """One reported consumption of a metric; summed in SQL for metered prices."""

    __tablename__ = "usage_records"

    #: Metric code, matching ``Price.metric`` (e.g. "api_calls", "storage_gb").
    metric: Mapped[str] = mapped_column(sa.String(60))
    #: Amount consumed, exact decimal.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: When the consumption happened (decides the billing period).
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: Client-chosen key; a repeated report with the same key is recorded once.
    idempotency_key: Mapped[str] = mapped_column(sa.String(100))
    #: SHA-256 of what was reported under the key, so the same key with another body is
    #: told apart from a repeat (NULL for records from before it was kept).
    fingerprint: Mapped[str | None] = mapped_column(sa.String(64))
    #: Free-form attributes sent by the reporter.
    properties: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: When the record was received (UTC).
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "idempotency_key"),
        sa.CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        # Period aggregation filters by tenant, metric and time.
        sa.Index("ix_usage_records_tenant_metric_time", "tenant_id", "metric", "occurred_at"),
    )


class Quota(IdMixin, TenantMixin, TimestampMixin, Base):
    """A per-period allowance of a metric for a tenant."""

    __tablename__ = "quotas"

    #: Metric code.
    metric: Mapped[str] = mapped_column(sa.String(60))
    #: Allowed amount per billing period.
    limit: Mapped[Decimal] = mapped_column(Quantity)
    #: Whether usage above the limit is refused (hard) or only reported (soft).
    is_hard: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "metric"),
        sa.CheckConstraint('"limit" >= 0', name="limit_non_negative"),
    )


class UsageDailyTotal(Base):
    """The sum of one tenant's usage of a metric on one UTC day: a rollup of usage_records.

    Kept by database triggers (migration 0008) on every insert, update and delete of a usage
    record, whoever writes it, so period totals read a row per day instead of every record.
    Never written by the application.
    """

    __tablename__ = "usage_daily_totals"
    __tenant_owned__ = True

    tenant_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    #: The UTC day of ``usage_records.occurred_at``.
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: How many records make up ``quantity``.
    records: Mapped[int] = mapped_column(sa.Integer)
