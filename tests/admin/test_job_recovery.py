"""Console jobs whose tasks a dead worker took: the sweeper queues the missing steps again.

The queue runs tasks at once here; a lost task is one whose enqueueing is replaced by
nothing (or by running only some of them). "Later" is a sweep with its clock moved on.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.db import utcnow
from portal.extensions import db
from portal.invoices import run as invoice_run
from portal.invoices.models import Invoice
from portal.invoices.run import generate_for_company, start_invoice_run
from portal.ops.jobs import _step_done
from portal.ops.models import Job, JobStatus, JobStep
from portal.ops.sweeper import SweepWindow, sweep
from portal.usage import reports
from portal.usage.reports import build_quota_report, start_quota_report

GRACE = dt.timedelta(seconds=300)


def _sweep(now: dt.datetime) -> int:
    result = sweep(db.engine, SweepWindow(now=now, grace=GRACE, lease=GRACE))
    assert result.failed == []
    db.session.expire_all()
    return result.counts["job"]


def _job(job_id: int) -> Job:
    db.session.expire_all()
    return db.session.get(Job, job_id)


def _invoices_per_tenant(tenant_ids: list[int], exclude: list[int]) -> dict[int, int]:
    return dict(
        db.session.execute(
            sa.select(Invoice.tenant_id, sa.func.count())
            .where(Invoice.tenant_id.in_(tenant_ids), Invoice.id.not_in(exclude))
            .group_by(Invoice.tenant_id)
        ).all()
    )


class LossyQueue:
    """The queue losing some tasks of admin jobs, as a worker killed while it ran them."""

    def __init__(self, monkeypatch):
        self._monkeypatch = monkeypatch

    def lose(self, *tenant_ids: int, report: bool = False) -> None:
        """Lose the company tasks of ``tenant_ids`` (the others run), and quota reports."""

        def maybe_run(job_id: int, tenant_id: int) -> None:
            if tenant_id not in tenant_ids:
                generate_for_company(job_id, tenant_id)

        self._monkeypatch.setattr(invoice_run, "invoice_generation_task", maybe_run)
        if report:
            self._monkeypatch.setattr(reports, "quota_report_task", lambda job_id: None)

    def repair(self) -> None:
        self._monkeypatch.undo()


@pytest.fixture
def lossy(monkeypatch) -> LossyQueue:
    return LossyQueue(monkeypatch)


def test_lost_company_of_an_invoice_run_is_billed_once(subscribed, session, actor, lossy):
    a, b = subscribed.a, subscribed.b
    lossy.lose(b.tenant.id)
    job = start_invoice_run(session, utcnow().strftime("%Y-%m"), actor)
    session.commit()
    lossy.repair()
    job = _job(job.id)
    assert (job.status, job.progress_done, job.progress_total) == (JobStatus.RUNNING, 1, 2)
    assert _sweep(utcnow()) == 0  # it moved a moment ago: its tasks may be on their way
    assert _sweep(utcnow() + GRACE + dt.timedelta(seconds=1)) == 1  # b only, not a again
    job = _job(job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total) == (2, 2)
    assert job.result["created"] == 2
    tenants = [a.tenant.id, b.tenant.id]
    assert _invoices_per_tenant(tenants, [a.invoice.id, b.invoice.id]) == {t: 1 for t in tenants}
    assert session.scalars(sa.select(JobStep)).all() == []  # cleared with the job's end
    assert _sweep(utcnow() + 10 * GRACE) == 0


def test_a_company_step_run_twice_counts_once(subscribed, session, actor, lossy):
    a, b = subscribed.a, subscribed.b
    lossy.lose(a.tenant.id, b.tenant.id)
    job = start_invoice_run(session, utcnow().strftime("%Y-%m"), actor)
    session.commit()
    lossy.repair()
    assert generate_for_company(job.id, a.tenant.id) == "done"
    assert generate_for_company(job.id, a.tenant.id) == "skipped"
    job = _job(job.id)
    assert (job.status, job.progress_done) == (JobStatus.RUNNING, 1)
    # A copy that got past the first check (it ran alongside the first) counts nothing
    # either: the step is checked again under the job's lock.
    assert _step_done(db.session, job.id, str(a.tenant.id)) is None
    db.session.rollback()
    assert _job(job.id).progress_done == 1
    # Swept later, only b is queued again.
    assert _sweep(utcnow() + GRACE + dt.timedelta(seconds=1)) == 1
    job = _job(job.id)
    assert (job.status, job.progress_done) == (JobStatus.SUCCEEDED, 2)


def test_lost_quota_report_is_built_once(world, session, actor, lossy):
    lossy.lose(report=True)
    today = utcnow().date()
    job = start_quota_report(session, world.a.tenant, today.replace(day=1), today, actor)
    session.commit()
    lossy.repair()
    assert _job(job.id).status == JobStatus.QUEUED
    assert _sweep(utcnow()) == 0
    assert _sweep(utcnow() + GRACE + dt.timedelta(seconds=1)) == 1
    job = _job(job.id)
    assert job.status == JobStatus.SUCCEEDED and job.progress_done == 1
    assert job.result["csv"].startswith("company,metric,limit,used")
    assert build_quota_report(job.id) == "skipped"
    assert _sweep(utcnow() + 10 * GRACE) == 0


def test_jobs_not_run_by_the_queue_are_not_swept(world, session):
    # `flask invoice-run` keeps its job in its own process; running it again resumes it.
    stale = utcnow() - dt.timedelta(hours=1)
    session.add(Job(kind="invoice_run", status=JobStatus.RUNNING, params={}, updated_at=stale))
    session.commit()
    assert _sweep(utcnow()) == 0
