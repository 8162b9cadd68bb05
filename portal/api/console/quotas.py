"""Console operations of a company's quotas (its allowance of a metric per billing period).

Declared on the console surface (``views.api``): same envelope, errors, idempotency per
X-Request-id and OpenAPI; every change goes through ``usage/quotas.py``, as the admin page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, StringConstraints

from portal.api.console.common import company_or_404, not_found, token_actor
from portal.api.console.envelope import action, whole_collection
from portal.api.console.schemas import ActionResponse
from portal.api.console.subscription_schemas import DecimalIn
from portal.api.console.views import api
from portal.api.core import ApiError, error_entry
from portal.extensions import db
from portal.ops.audit import AdminActionRefused
from portal.usage.models import Quota
from portal.usage.quotas import QuotaInvalid, company_quotas, find_quota, remove_quota, set_quota

TAGS = ["Quotas"]
_NAMES = {"limit": "limit", "is_hard": "isHard", "metric": "metric"}

Metric = Annotated[StrictStr, StringConstraints(min_length=1, max_length=60)]


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: DecimalIn = Field(description="Allowance per billing period, 0 or more.")
    isHard: StrictBool = Field(False, description="Marked as a limit not to exceed.")


class QuotaResource(BaseModel):
    companyUid: str = Field(json_schema_extra={"format": "uuid"})
    metric: str
    limit: str
    isHard: bool


class QuotaCollection(BaseModel):
    data: list[QuotaResource]
    meta: dict


QuotaAction = ActionResponse[QuotaResource]


def quota_invalid(exc: QuotaInvalid) -> ApiError:
    """Quota input the service refuses: 400 at each field (the metric is in the path)."""
    return ApiError(
        400,
        [
            error_entry(
                ["path", "metric"] if field == "metric" else ["body", _NAMES.get(field, field)],
                message,
                "invalid_value",
            )
            for field, message in exc.errors.items()
        ],
    )


def quota_refused(exc: AdminActionRefused) -> ApiError:
    """An archived company takes no quota change: 409."""
    return ApiError(409, [error_entry(["path", "companyUid"], exc.message, exc.code)])


RAISES: dict[type[Exception], Any] = {
    QuotaInvalid: quota_invalid,
    AdminActionRefused: quota_refused,
}


def quota_resource(quota: Quota, company_uid: str) -> dict[str, Any]:
    return {
        "companyUid": company_uid,
        "metric": quota.metric,
        "limit": f"{Decimal(quota.limit).normalize():f}",
        "isHard": bool(quota.is_hard),
    }


@api.operation(
    "GET",
    "/<companyUid>/billing/quotas",
    "Get Quotas of Company",
    response=QuotaCollection,
    tags=TAGS,
    errors=(404,),
)
def get_quotas(companyUid: str):
    """The company's quotas, by metric."""
    tenant = company_or_404(companyUid)
    rows = [quota_resource(q, str(tenant.public_id)) for q in company_quotas(db.session, tenant)]
    return whole_collection(rows)


@api.operation(
    "PUT",
    "/<companyUid>/billing/quotas/<metric>",
    "Set Quota",
    body=QuotaIn,
    response=QuotaAction,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def put_quota(companyUid: str, metric: str, body: QuotaIn):
    """Give the company a quota of ``metric`` or change the one it has (the same values
    again change nothing). 400 for a bad metric or limit; 409 for an archived company."""
    tenant = company_or_404(companyUid)
    quota = set_quota(
        db.session, tenant, {"metric": metric, "limit": body.limit, "is_hard": body.isHard},
        token_actor(),
    )  # fmt: skip
    return action(quota_resource(quota, str(tenant.public_id)))


@api.operation(
    "DELETE",
    "/<companyUid>/billing/quotas/<metric>",
    "Remove Quota",
    response=QuotaAction,
    scope="write",
    tags=TAGS,
    errors=(404, 409),
    raises=RAISES,
)
def delete_quota(companyUid: str, metric: str):
    """Remove the company's quota of ``metric``: its usage is then only reported. 404 when
    it has none; 409 for an archived company."""
    tenant = company_or_404(companyUid)
    quota = find_quota(db.session, tenant, metric)
    if quota is None:
        raise not_found(["path", "metric"], "Quota")
    gone = quota_resource(quota, str(tenant.public_id))
    remove_quota(db.session, tenant, metric, token_actor())
    return action(gone)
