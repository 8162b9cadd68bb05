"""Quotas: a company's allowance of a metric per billing period (set and remove, audited).

One quota per company and metric. A soft quota is only reported (the quota usage report and
the usage meters); ``is_hard`` marks the ones meant to refuse usage above the limit.
The admin pages and the console API are to call these functions, as the demo seed does.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from portal.db import lock, scoped
from portal.ops.audit import N_, Actor, AdminActionRefused, record_audit
from portal.tenancy.models import Tenant
from portal.usage.models import Quota
from portal.usage.services import MAX_QUANTITY, METRIC, QUANTITY_PLACES

QUOTA_FIELDS = ("metric", "limit", "is_hard")


class QuotaInvalid(Exception):
    """Quota input that breaks one or more rules; nothing was written.

    :ivar errors: field name → English message (pages translate it).
    """

    def __init__(self, errors: Mapping[str, str]):
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


def quota_dict(quota: Quota) -> dict[str, Any]:
    """The quota as JSON-safe values (the limit as a decimal string), for audit entries."""
    return {
        "metric": quota.metric,
        "limit": f"{Decimal(quota.limit).normalize():f}",
        "is_hard": bool(quota.is_hard),
    }


def company_quotas(session: Session, tenant: Tenant) -> list[Quota]:
    """The company's quotas, by metric."""
    return list(session.scalars(scoped(Quota, tenant).order_by(Quota.metric)))


def find_quota(session: Session, tenant: Tenant, metric: str) -> Quota | None:
    """The company's quota of ``metric``, or None."""
    return session.scalars(scoped(Quota, tenant).where(Quota.metric == metric)).first()


def _metric(value: Any) -> str:
    if not isinstance(value, str) or not METRIC.fullmatch(value.strip()):
        raise ValueError(N_("The metric must be 1 to 60 letters, digits or _ . : -"))
    return value.strip()


def _limit(value: Any) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(N_("Enter the allowance per billing period."))
    # A float would carry its binary error into the limit; JSON and forms send text or ints.
    if isinstance(value, bool | float) or not isinstance(value, str | int | Decimal):
        raise ValueError(N_("Enter the limit as a number, e.g. 150000."))
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(N_("Enter the limit as a number, e.g. 150000.")) from None
    if (
        not number.is_finite()
        or number < 0
        or number > MAX_QUANTITY
        or -int(number.as_tuple().exponent) > QUANTITY_PLACES
    ):
        raise ValueError(
            N_("The limit must be a number from 0 to 999999999999 with at most six decimals.")
        )
    return number


def _is_hard(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None or value in ("", "0", "false", "off"):
        return False
    if value in ("1", "true", "on"):
        return True
    raise ValueError(N_("Enter true or false."))


def validate_quota(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check a quota: ``metric``, ``limit`` (per period, >= 0) and ``is_hard`` (default no).

    :raise QuotaInvalid: one message per wrong, missing or unknown field.
    """
    if not isinstance(values, Mapping):
        raise QuotaInvalid({"body": N_("Send the quota's fields.")})
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in values:
        if name not in QUOTA_FIELDS:
            errors[str(name)[:60]] = N_("Unknown field.")
    for name, check in (("metric", _metric), ("limit", _limit), ("is_hard", _is_hard)):
        try:
            clean[name] = check(values.get(name))
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise QuotaInvalid(errors)
    return clean


def set_quota(session: Session, tenant: Tenant, values: Mapping[str, Any], actor: Actor) -> Quota:
    """Give the company a quota of a metric, or change the one it has (audited).

    :raise QuotaInvalid: nothing is written then.
    :raise AdminActionRefused: ``archived`` for an archived company (checked under its lock).
    """
    clean = validate_quota(values)
    lock(session, tenant)  # serializes the company's quotas; the unique key backs it
    if tenant.archived_at is not None:
        raise AdminActionRefused(
            "archived", N_("The company is archived: its data can be read, not changed.")
        )
    quota = find_quota(session, tenant, clean["metric"])
    before = quota_dict(quota) if quota is not None else None
    if quota is None:
        quota = Quota(tenant_id=tenant.id, **clean)
        session.add(quota)
    else:
        lock(session, quota)
        quota.limit, quota.is_hard = clean["limit"], clean["is_hard"]
    session.flush()
    after = quota_dict(quota)
    if after != before:
        record_audit(
            session, actor, "quota.create" if before is None else "quota.update", "quota",
            clean["metric"], tenant_id=tenant.id, before=before, after=after,
        )  # fmt: skip
    return quota


def remove_quota(session: Session, tenant: Tenant, metric: str, actor: Actor) -> None:
    """Remove the company's quota of ``metric`` (audited); usage is then only reported.

    :raise AdminActionRefused: ``archived``, or ``no_quota`` when it has none of the metric.
    """
    lock(session, tenant)
    if tenant.archived_at is not None:
        raise AdminActionRefused(
            "archived", N_("The company is archived: its data can be read, not changed.")
        )
    quota = find_quota(session, tenant, metric) if isinstance(metric, str) else None
    if quota is None:
        raise AdminActionRefused("no_quota", N_("The company has no quota of this metric."))
    before = quota_dict(quota)
    session.delete(quota)
    session.flush()
    record_audit(
        session, actor, "quota.remove", "quota", metric, tenant_id=tenant.id, before=before
    )
