"""Background tasks of admin jobs: invoice generation split by company, quota reports.

Each task receives ids, opens its own session (in immediate mode it runs inside the
caller's after-commit hook, where the caller's session can no longer emit SQL) and is safe
to retry: invoices are unique per company, kind and period, and a task's invoices and its
progress step commit together, so a failed attempt leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.admin.billing import bill_month, quota_report_rows, rows_csv
from portal.db import utcnow
from portal.extensions import db, queue
from portal.invoices.generation import month_period
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.ops.models import Job, JobStatus
from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)

#: Job kinds started from the admin console.
INVOICE_GENERATION = "invoice_generation"
QUOTA_REPORT = "quota_report"

#: Attempts after the first; SQLite answers "database is locked" to a second writer.
RETRIES = 3


def _mark_running(session: Session, job_id: int) -> None:
    session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.RUNNING, started_at=utcnow())
    )


def _step_done(session: Session, job_id: int) -> Job:
    """Count one unit of work in SQL, so concurrent workers never lose an increment.

    The UPDATE locks the row until commit, so the worker that completes the last unit sees
    ``done == total`` and is the one that finishes the job.
    """
    session.execute(
        sa.update(Job).where(Job.id == job_id).values(progress_done=Job.progress_done + 1)
    )
    job = session.get(Job, job_id)
    session.refresh(job)
    return job


def _fail(job_id: int, exc: BaseException) -> None:
    with Session(db.engine) as session:
        session.execute(
            sa.update(Job)
            .where(Job.id == job_id)
            .values(
                status=JobStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}",
                finished_at=utcnow(),
            )
        )
        session.commit()


def invoice_run_result(session: Session, job: Job) -> dict[str, Any]:
    """What an invoice generation job produced, read back from the invoices themselves."""
    start, end = month_period(job.params["month"])
    invoices = session.scalars(
        sa.select(Invoice)
        .where(
            Invoice.tenant_id.in_(job.params["tenant_ids"]),
            Invoice.kind == InvoiceKind.SUBSCRIPTION,
            Invoice.period_end >= start,
            Invoice.period_end < end,
        )
        .order_by(Invoice.tenant_id, Invoice.id)
    ).all()
    return {
        "invoices": [str(invoice.public_id) for invoice in invoices],
        "created": len(invoices),
        "finalized": sum(1 for i in invoices if i.status != InvoiceStatus.DRAFT),
        "companies": len(job.params["tenant_ids"]),
    }


def generate_for_company(job_id: int, tenant_id: int) -> str:
    """Bill one company of an invoice generation job and count it as done."""
    with Session(db.engine) as session:
        job = session.get(Job, job_id)
        if job is None or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return "skipped"
        month = job.params["month"]
        _mark_running(session, job_id)
        tenant = session.get(Tenant, tenant_id)
        if tenant is not None:
            bill_month(session, tenant, month)
        job = _step_done(session, job_id)
        if job.progress_total is not None and job.progress_done >= job.progress_total:
            job.status = JobStatus.SUCCEEDED
            job.finished_at = utcnow()
            job.result = invoice_run_result(session, job)
        session.commit()
    # One line per company, so operators (and the tests) see which worker billed whom.
    log.info("invoice_generation job=%s tenant=%s pid=%s", job_id, tenant_id, os.getpid())
    return "done"


@queue.app_task(retries=RETRIES, retry_delay=1, context=True)
def invoice_generation_task(job_id: int, tenant_id: int, task: Any = None) -> str:
    """Queue task: one company's share of an invoice generation job."""
    try:
        return generate_for_company(job_id, tenant_id)
    except Exception as exc:
        if task is None or not task.retries:
            _fail(job_id, exc)
        raise


def build_quota_report(job_id: int) -> str:
    """Compute the quota usage report of a job and store it as rows and CSV."""
    with Session(db.engine) as session:
        job = session.get(Job, job_id)
        if job is None or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return "skipped"
        _mark_running(session, job_id)
        tenant = session.get(Tenant, job.tenant_id)
        start = dt.date.fromisoformat(job.params["start"])
        end = dt.date.fromisoformat(job.params["end"])
        rows = quota_report_rows(session, tenant, start, end)
        job = _step_done(session, job_id)
        job.status = JobStatus.SUCCEEDED
        job.finished_at = utcnow()
        job.result = {"rows": rows, "csv": rows_csv(rows), "count": len(rows)}
        session.commit()
    log.info("quota_report job=%s pid=%s", job_id, os.getpid())
    return "done"


@queue.app_task(retries=RETRIES, retry_delay=1, context=True)
def quota_report_task(job_id: int, task: Any = None) -> str:
    """Queue task: build one quota usage report."""
    try:
        return build_quota_report(job_id)
    except Exception as exc:
        if task is None or not task.retries:
            _fail(job_id, exc)
        raise
