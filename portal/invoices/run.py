"""The invoice run: every tenant's invoice for a month, in committed batches.

Safe to repeat and to resume: tenants already billed for the month are skipped in SQL,
each batch is generated, finalized and committed as one transaction, and progress is kept
in the ``jobs`` table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import CompanyBillingSettings, Subscription, SubscriptionStatus
from portal.db import utcnow
from portal.invoices.generation import generate_invoices, month_period
from portal.invoices.models import Invoice
from portal.invoices.services import finalize_invoices
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.ops.models import Job, JobStatus
from portal.tenancy.models import Tenant

JOB_KIND = "invoice_run"


@dataclass
class RunResult:
    """What a run did."""

    period: str
    tenants: int = 0
    created: int = 0
    finalized: int = 0
    skipped: int = 0  # already billed for the month


def tenants_to_bill(session: Session, month: str) -> tuple[list[int], int]:
    """Ids of active tenants with a subscription and no invoice yet for the month."""
    start, end = month_period(month)
    subscribed = (
        sa.select(Subscription.tenant_id)
        .where(Subscription.status != SubscriptionStatus.CANCELED, Subscription.started_on < end)
        .distinct()
    )
    billed = sa.select(Invoice.tenant_id).where(
        Invoice.kind == InvoiceKind.SUBSCRIPTION,
        Invoice.period_end >= start,
        Invoice.period_end < end,
    )
    billable = sa.select(Tenant.id).where(Tenant.is_active.is_(True), Tenant.id.in_(subscribed))
    todo = session.scalars(billable.where(Tenant.id.not_in(billed)).order_by(Tenant.id)).all()
    total = session.scalar(sa.select(sa.func.count()).select_from(billable.subquery()))
    return list(todo), total - len(todo)


def _job(session: Session, month: str, total: int, actor: str | None) -> Job:
    job = session.scalars(
        sa.select(Job)
        .where(
            Job.kind == JOB_KIND,
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED]),
        )
        .where(Job.params["period"].as_string() == month)
        .order_by(Job.id.desc())
    ).first()
    if job is None:
        job = Job(kind=JOB_KIND, params={"period": month}, created_by=actor)
        session.add(job)
    job.status = JobStatus.RUNNING
    job.started_at = job.started_at or utcnow()
    job.progress_total = total
    job.progress_done = 0
    job.error = None
    session.commit()
    return job


def run_invoices(
    session: Session,
    month: str,
    *,
    issue_date: dt.date | None = None,
    batch_size: int = 200,
    actor: str | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> RunResult:
    """Generate (and, where the company's settings say so, finalize) the month's invoices.

    :param on_batch: called with the number of tenants done after each committed batch.
    """
    _, month_end = month_period(month)
    issue_date = issue_date or month_end
    todo, skipped = tenants_to_bill(session, month)
    result = RunResult(period=month, tenants=len(todo) + skipped, skipped=skipped)
    job = _job(session, month, len(todo), actor)
    job_id = job.id
    try:
        for offset in range(0, len(todo), batch_size):
            ids = todo[offset : offset + batch_size]
            tenants = session.scalars(sa.select(Tenant).where(Tenant.id.in_(ids))).all()
            manual = set(
                session.scalars(
                    sa.select(CompanyBillingSettings.tenant_id).where(
                        CompanyBillingSettings.tenant_id.in_(ids),
                        CompanyBillingSettings.auto_finalize.is_(False),
                    )
                )
            )
            drafts = []
            for invoice in generate_invoices(session, tenants, month, issue_date=issue_date):
                result.created += 1
                if invoice.status == InvoiceStatus.DRAFT and invoice.tenant_id not in manual:
                    drafts.append(invoice)
            # One numbering lock per seller and one flush for the batch, not per invoice.
            result.finalized += len(finalize_invoices(session, drafts, issue_date=issue_date))
            job = session.get(Job, job_id)
            job.progress_done = min(offset + len(ids), len(todo))
            session.commit()
            if on_batch is not None:
                on_batch(len(ids))
    except Exception as exc:
        session.rollback()
        job = session.get(Job, job_id)
        job.status = JobStatus.FAILED
        job.error = f"{type(exc).__name__}: {exc}"
        session.commit()
        raise
    job = session.get(Job, job_id)
    job.status = JobStatus.SUCCEEDED
    job.finished_at = utcnow()
    job.result = {
        "created": result.created,
        "finalized": result.finalized,
        "skipped": result.skipped,
        "tenants": result.tenants,
    }
    session.commit()
    return result
