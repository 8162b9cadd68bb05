"""Background tasks of admin jobs: invoice generation split by company, quota reports.

Each task receives ids, opens its own session (in immediate mode it runs inside the
caller's after-commit hook, where the caller's session can no longer emit SQL) and is safe
to retry: invoices are unique per company, kind and period, and a task's invoices and its
progress step commit together, so a failed attempt leaves nothing behind. Each counted step
is recorded (``job_steps``), so a task run twice counts once, and the sweeper queues again
the steps of a job a dead worker left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.admin.billing import bill_month, quota_report_rows, rows_csv
from portal.db import lock, utcnow
from portal.extensions import db, queue
from portal.invoices.generation import month_period
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.ops.models import Job, JobStatus, JobStep
from portal.ops.sweeper import SweepWindow, register_sweep
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


def _step_is_done(session: Session, job_id: int, key: str) -> bool:
    return session.get(JobStep, (job_id, str(key)), populate_existing=True) is not None


def _step_done(session: Session, job_id: int, key: str) -> Job | None:
    """Count one unit of work, once: returns the job, or None when there is nothing to count
    (the step was counted already, or the job is finished).

    The job's row lock is taken first, and the step and the job's state are checked inside
    it; the step's row and the increment then commit with the work. So a copy of the task
    (a retry, or one the sweeper queued) counts nothing twice, and the worker that completes
    the last unit sees ``done == total`` and is the one that finishes the job.
    """
    job = lock(session, session.get(Job, job_id))
    if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) or _step_is_done(session, job_id, key):
        return None
    session.add(JobStep(job_id=job_id, key=str(key)))
    session.execute(
        sa.update(Job).where(Job.id == job_id).values(progress_done=Job.progress_done + 1)
    )
    session.refresh(job)
    return job


def _finish(session: Session, job: Job, result: dict[str, Any]) -> None:
    job.status = JobStatus.SUCCEEDED
    job.finished_at = utcnow()
    job.result = result
    session.execute(sa.delete(JobStep).where(JobStep.job_id == job.id))


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
    """Bill one company of an invoice generation job and count it as done (once)."""
    with Session(db.engine) as session:
        job = session.get(Job, job_id)
        if job is None or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return "skipped"
        if _step_is_done(session, job_id, str(tenant_id)):
            return "skipped"
        month = job.params["month"]
        _mark_running(session, job_id)
        tenant = session.get(Tenant, tenant_id)
        if tenant is not None:
            bill_month(session, tenant, month)
        job = _step_done(session, job_id, str(tenant_id))
        if job is None:  # another copy of this task counted it first; its invoices stand
            session.commit()
            return "skipped"
        if job.progress_total is not None and job.progress_done >= job.progress_total:
            _finish(session, job, invoice_run_result(session, job))
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


#: The one step of a quota report.
REPORT_STEP = "report"


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
        job = _step_done(session, job_id, REPORT_STEP)
        if job is None:
            session.commit()
            return "skipped"
        _finish(session, job, {"rows": rows, "csv": rows_csv(rows), "count": len(rows)})
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


# -- recovery -------------------------------------------------------------------------------


def sweep_jobs(session: Session, window: SweepWindow) -> int:
    """Queue again the steps of jobs that stopped moving; returns how many steps.

    A queued or running console job that has not changed for the grace (every counted step
    moves its ``updated_at``) has lost tasks, or waits behind a long queue: its steps
    without a :class:`JobStep` row are queued again (a copy that finds its step done does
    nothing; at most ``window.limit`` steps a sweep), and the job is touched so the next
    sweeps leave it alone for another grace.
    Invoice runs of ``flask invoice-run`` run in that process, not on the queue, and are not
    swept (they resume when run again).
    """
    jobs = session.scalars(
        sa.select(Job)
        .where(
            Job.kind.in_([INVOICE_GENERATION, QUOTA_REPORT]),
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
            Job.updated_at < window.queued_before,
        )
        .order_by(Job.id)
        .limit(window.limit)
    ).all()
    todo: list[tuple[int, str, list[str]]] = []
    for job in jobs:
        keys = (
            [str(t) for t in job.params.get("tenant_ids", [])]
            if job.kind == INVOICE_GENERATION
            else [REPORT_STEP]
        )
        done = set(session.scalars(sa.select(JobStep.key).where(JobStep.job_id == job.id)))
        todo.append((job.id, job.kind, [key for key in keys if key not in done]))
    if jobs:
        session.execute(
            sa.update(Job).where(Job.id.in_([job.id for job in jobs])).values(updated_at=window.now)
        )
    session.commit()
    count = 0
    for job_id, kind, keys in todo:
        keys = keys[: max(window.limit - count, 0)]  # the rest after the next grace
        if keys:
            log.warning("job %s stopped moving; queueing its steps %s again", job_id, keys)
        for key in keys:
            if kind == INVOICE_GENERATION:
                invoice_generation_task(job_id, int(key))
            else:
                quota_report_task(job_id)
            count += 1
    return count


register_sweep("job", sweep_jobs)
