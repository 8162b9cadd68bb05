"""The invoice run: every tenant's invoice for a month, in committed batches.

Safe to repeat and to resume: tenants already billed for the month are skipped in SQL,
each batch is generated, finalized and committed as one transaction, and progress is kept
in the ``jobs`` table.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.bulk import among
from portal.catalog.models import CompanyBillingSettings, Subscription, SubscriptionStatus
from portal.db import lock, utcnow
from portal.extensions import db, queue
from portal.invoices.actions import _invoice_state
from portal.invoices.generation import generate_invoices, issue_invoices, month_period
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.ops.after_commit import after_commit
from portal.ops.audit import N_, Actor, AdminActionRefused, record_audit
from portal.ops.jobs import (
    RETRIES,
    _fail,
    _finish,
    _mark_running,
    _new_job,
    _step_done,
    _step_is_done,
)
from portal.ops.models import Job, JobStatus
from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)

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
    """Ids of active, not archived tenants with a subscription and no invoice yet for the
    month."""
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
    billable = sa.select(Tenant.id).where(
        Tenant.is_active.is_(True), Tenant.archived_at.is_(None), Tenant.id.in_(subscribed)
    )
    todo = session.scalars(billable.where(Tenant.id.not_in(billed)).order_by(Tenant.id)).all()
    total = session.execute(
        sa.select(sa.func.count()).select_from(billable.subquery())
    ).scalar_one()
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
            tenants = session.scalars(
                # A company archived since the list was read gets no invoice either. The
                # rows are locked (in id order, as every path locks companies) as one
                # company's "generate now" locks it: usage batches hold a shared lock on
                # the company, so an event is either in before its invoice reads usage or
                # sees the invoice and is refused; never accepted and left unbilled.
                sa.select(Tenant)
                .where(among(session, Tenant.id, ids), Tenant.archived_at.is_(None))
                .order_by(Tenant.id)
                .with_for_update()
            ).all()
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
            job = session.get_one(Job, job_id)
            job.progress_done = min(offset + len(ids), len(todo))
            session.commit()
            if on_batch is not None:
                on_batch(len(ids))
    except Exception as exc:
        session.rollback()
        job = session.get_one(Job, job_id)
        job.status = JobStatus.FAILED
        job.error = f"{type(exc).__name__}: {exc}"
        session.commit()
        raise
    job = session.get_one(Job, job_id)
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


def _check_not_archived(tenant: Tenant) -> None:
    if tenant.archived_at is not None:
        raise AdminActionRefused(
            "archived", N_("The company is archived: it gets no new invoices.")
        )


def _check_month(month: str) -> None:
    try:
        month_period(month)
    except ValueError:
        raise AdminActionRefused("invalid_month", N_("Enter a month as YYYY-MM.")) from None


def generate_now(session: Session, tenant: Tenant, month: str, actor: Actor) -> Invoice:
    """Generate the company's invoice for ``month`` now and, per its settings, finalize it.

    Idempotent: an existing invoice of that month is returned unchanged.

    :raise AdminActionRefused: ``invalid_month``, ``archived`` or ``nothing_to_bill``.
    """
    _check_month(month)
    _check_not_archived(tenant)
    invoices = bill_month(session, tenant, month)
    if not invoices:
        raise AdminActionRefused(
            "nothing_to_bill", N_("The company has nothing to bill for this month.")
        )
    invoice = invoices[0]
    record_audit(
        session,
        actor,
        "invoice.generate",
        "invoice",
        str(invoice.public_id),
        tenant_id=tenant.id,
        after={"month": month, **_invoice_state(invoice)},
    )
    return invoice


def start_invoice_generation(session: Session, tenant: Tenant, month: str, actor: Actor) -> Job:
    """Queue the generation of one company's invoice for ``month`` (runs after commit).

    :raise AdminActionRefused: ``invalid_month`` or ``archived``.
    """
    _check_month(month)
    _check_not_archived(tenant)
    params = {"month": month, "company": str(tenant.public_id), "tenant_ids": [tenant.id]}
    job = _new_job(session, INVOICE_GENERATION, tenant, params, 1, actor)
    job_id, tenant_id = job.id, tenant.id
    after_commit(session, lambda: invoice_generation_task(job_id, tenant_id))
    return job


def start_invoice_run(session: Session, month: str, actor: Actor) -> Job:
    """Queue invoice generation for every company still to bill in ``month``, one task per
    company, so several workers share the run.

    :raise AdminActionRefused: ``invalid_month``.
    """
    _check_month(month)
    tenant_ids, _ = tenants_to_bill(session, month)
    params = {"month": month, "company": None, "tenant_ids": tenant_ids}
    job = _new_job(session, INVOICE_GENERATION, None, params, len(tenant_ids), actor)
    job_id = job.id
    if not tenant_ids:
        job.status = JobStatus.SUCCEEDED
        job.finished_at = job.started_at = job.created_at
        job.result = invoice_run_result(session, job)
        session.flush()
        return job

    def enqueue() -> None:
        for tenant_id in tenant_ids:
            invoice_generation_task(job_id, tenant_id)

    after_commit(session, enqueue)
    return job


def bill_month(session: Session, tenant: Tenant, month: str) -> list[Invoice]:
    """Generate the company's invoices of ``month`` and finalize them unless its settings
    ask for review (``auto_finalize`` off), as the invoice run does.

    Idempotent: an invoice that exists for the period is returned as it is. Concurrent
    calls for one company wait for each other on the company's row, so the second finds
    the first one's invoices instead of failing on the one-invoice-per-period constraint.
    """
    lock(session, tenant)
    if tenant.archived_at is not None:
        return []  # an archived company gets no new invoices
    _, month_end = month_period(month)
    settings = session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant.id)
    ).first()
    auto_finalize = settings is None or settings.auto_finalize
    invoices = generate_invoices(session, [tenant], month, issue_date=month_end)
    for invoice in invoices:
        if auto_finalize and invoice.status == InvoiceStatus.DRAFT:
            finalize_invoice(session, invoice, issue_date=month_end)
    session.flush()
    return invoices


#: Job kinds started from the admin console.
INVOICE_GENERATION = "invoice_generation"


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
        job: Job | None = session.get(Job, job_id)
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


def generation_steps(job: Job) -> list[str]:
    """The counted steps of an invoice generation job: one per company (its tenant id)."""
    return [str(tenant_id) for tenant_id in job.params.get("tenant_ids", [])]


def queue_generation_step(job_id: int, key: str) -> None:
    """Queue one company's share of a generation job again (the sweeper's recovery)."""
    invoice_generation_task(job_id, int(key))
