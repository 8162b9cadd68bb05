"""The invoice run: every tenant's invoice for a month, in committed batches.

Safe to repeat and to resume: tenants already billed for the month are skipped in SQL,
each batch is generated, finalized and committed as one transaction, and progress is kept
in the ``jobs`` table.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import CompanyBillingSettings, Subscription, SubscriptionStatus
from portal.db import utcnow
from portal.invoices.generation import issue_invoices, month_period
from portal.invoices.models import Invoice
from portal.invoices.services import among
from portal.invoices.states import InvoiceKind
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


@contextmanager
def _collector_skips_older_objects() -> Iterator[None]:
    """Keep the garbage collector's full passes to what the run allocates.

    A run makes and drops ORM objects by the hundred thousand, and every full pass of the
    collector would walk the whole heap again (the app's metadata, compiled statements,
    templates). Objects older than the run are set aside for its duration (``gc.freeze``)
    and handed back after; what the run allocates is collected as usual. Left alone when
    the process already freezes objects itself (e.g. a pre-forking server).
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
    with _collector_skips_older_objects():
        return _run(session, month, issue_date, batch_size, actor, on_batch)


def _run(
    session: Session,
    month: str,
    issue_date: dt.date | None,
    batch_size: int,
    actor: str | None,
    on_batch: Callable[[int], None] | None,
) -> RunResult:
    _, month_end = month_period(month)
    issue_date = issue_date or month_end
    todo, skipped = tenants_to_bill(session, month)
    result = RunResult(period=month, tenants=len(todo) + skipped, skipped=skipped)
    job = _job(session, month, len(todo), actor)
    job_id = job.id
    try:
        for offset in range(0, len(todo), batch_size):
            ids = todo[offset : offset + batch_size]
            tenants = session.scalars(sa.select(Tenant).where(among(session, Tenant.id, ids))).all()
            manual = set(
                session.scalars(
                    sa.select(CompanyBillingSettings.tenant_id).where(
                        among(session, CompanyBillingSettings.tenant_id, ids),
                        CompanyBillingSettings.auto_finalize.is_(False),
                    )
                )
            )
            # Generated, numbered and finalized in bulk: a fixed number of statements and
            # one numbering lock per seller for the batch, not per invoice.
            created, finalized = issue_invoices(
                session,
                tenants,
                month,
                issue_date=issue_date,
                keep_drafts=manual,
            )
            result.created += created
            result.finalized += finalized
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
