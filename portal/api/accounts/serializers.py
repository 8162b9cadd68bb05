"""Models of the account API from the portal's rows; no queries, no rules."""

from __future__ import annotations

from portal.api.accounts.schemas import (
    BillingInfoResponse,
    ConsumptionResponse,
    MovementResponse,
    RefundResponse,
)
from portal.ledger.models import LedgerMovement
from portal.payments.models import Refund
from portal.tenancy.models import BillingProfile
from portal.usage.models import UsageRecord


def _value(member) -> str:
    return str(getattr(member, "value", member))


def consumption(record: UsageRecord) -> ConsumptionResponse:
    return ConsumptionResponse(
        id=str(record.public_id),
        metric=record.metric,
        quantity=record.quantity,
        occurred_at=record.occurred_at,
        idempotency_key=record.idempotency_key,
        properties=dict(record.properties or {}),
        created_at=record.created_at,
    )


def movement(row: LedgerMovement, invoice_ids: dict[int, str]) -> MovementResponse:
    return MovementResponse(
        id=str(row.public_id),
        kind=_value(row.kind),
        amount_minor=row.amount_minor,
        currency=row.currency,
        description=row.description,
        invoice_id=invoice_ids.get(row.invoice_id) if row.invoice_id else None,
        occurred_at=row.occurred_at,
    )


def refund(row: Refund, invoice_ids: dict[int, str], payment_ids: dict[int, str]) -> RefundResponse:
    return RefundResponse(
        id=str(row.public_id),
        invoice_id=invoice_ids.get(row.invoice_id) if row.invoice_id else None,
        payment_id=payment_ids[row.payment_id],
        amount_minor=row.amount_minor,
        currency=row.currency,
        reason=row.reason,
        status=_value(row.status),
        created_at=row.created_at,
    )


def billing_info(profile: BillingProfile) -> BillingInfoResponse:
    names = [
        n for n in BillingInfoResponse.model_fields if n not in ("cc_emails", "einvoice_format")
    ]
    return BillingInfoResponse(
        **{name: getattr(profile, name) for name in names},
        cc_emails=list(profile.cc_emails or []),
        einvoice_format=_value(profile.einvoice_format),
    )
