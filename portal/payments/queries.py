"""Read-side queries over payments and refunds, scoped to one tenant."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import scoped
from portal.invoices.models import Invoice
from portal.payments.models import Payment, PaymentStatus, Refund
from portal.tenancy.models import Tenant


def refundable_payment(session: Session, tenant: Tenant, invoice: Invoice) -> Payment | None:
    """The invoice's newest succeeded payment with something left to refund, locked
    (``FOR UPDATE``) so that two refunds at once cannot both take what is left."""
    return session.scalars(
        scoped(Payment, tenant)
        .where(
            Payment.invoice_id == invoice.id,
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.amount_minor > Payment.refunded_minor,
        )
        .order_by(Payment.id.desc())
        .with_for_update()
    ).first()


def refund_page(
    session: Session, tenant: Tenant, *, limit: int, offset: int = 0
) -> tuple[list[Refund], int]:
    """One page of the tenant's refunds, newest first, and the total count."""
    query = scoped(Refund, tenant)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    query = query.order_by(Refund.created_at.desc(), Refund.id.desc())
    return list(session.scalars(query.limit(limit).offset(offset))), int(total)


def payment_public_ids(session: Session, ids: set[int]) -> dict[int, str]:
    """Public ids of the payments with these row ids (row id -> public id as text)."""
    if not ids:
        return {}
    rows = session.execute(sa.select(Payment.id, Payment.public_id).where(Payment.id.in_(ids)))
    return {row_id: str(public_id) for row_id, public_id in rows}
