"""Jobs: long work with recorded progress that pages and APIs show.

A job is queued in the transaction that starts it; its tasks mark it running, record each
counted step once (``job_steps``, so a retried task counts nothing twice) and finish or
fail it. The sweeper queues again the steps of a job a dead worker left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.db import lock, utcnow
from portal.extensions import db
from portal.ops.audit import Actor, record_audit
from portal.ops.models import Job, JobStatus, JobStep
from portal.ops.sweeper import SweepWindow
from portal.tenancy.models import Tenant

log = logging.getLogger(__name__)


def _new_job(
    session: Session, kind: str, tenant: Tenant | None, params: dict, total: int, actor: Actor
) -> Job:
    job = Job(
        kind=kind,
        tenant_id=tenant.id if tenant else None,
        status=JobStatus.QUEUED,
        params=params,
        progress_done=0,
        progress_total=total,
        created_by=actor.label[:254],
    )
    session.add(job)
    session.flush()
    record_audit(
        session,
        actor,
        f"job.{kind}",
        "job",
        str(job.public_id),
        tenant_id=job.tenant_id,
        after={"params": params},
    )
    return job


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_dict(job: Job) -> dict[str, Any]:
    """A job as JSON-safe values, for the jobs page and the console API."""
    total = job.progress_total
    percent = job.percent
    if percent is None and job.status == JobStatus.SUCCEEDED:
        percent = 100
    params = {k: v for k, v in (job.params or {}).items() if k != "tenant_ids"}
    return {
        "id": str(job.public_id),
        "kind": job.kind,
        "status": str(job.status),
        "progress": {"done": job.progress_done or 0, "total": total, "percent": percent},
        "params": params,
        "result": job.result,
        "error": job.error,
        "created_by": job.created_by,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


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
    job = lock(session, session.get_one(Job, job_id))
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


@dataclass(frozen=True)
class JobKind:
    """How the sweeper recovers a kind of queued job."""

    #: The keys of every counted step of a job (a step done has its :class:`JobStep`).
    steps: Callable[[Job], list[str]]
    #: Queue one step of the job again: ``(job_id, key)``.
    queue_step: Callable[[int, str], Any]


#: Kinds of queued jobs the sweeper recovers, by :attr:`Job.kind` (see :func:`register_job_kind`).
JOB_KINDS: dict[str, JobKind] = {}


def register_job_kind(kind: str, *, steps: Callable[[Job], list[str]], queue_step) -> None:
    """Let the sweeper recover jobs of ``kind`` (wired in :mod:`portal.wiring`)."""
    JOB_KINDS[kind] = JobKind(steps=steps, queue_step=queue_step)


def sweep_jobs(session: Session, window: SweepWindow) -> int:
    """Queue again the steps of jobs that stopped moving; returns how many steps.

    A queued or running job of a registered kind that has not changed for the grace (every
    counted step moves its ``updated_at``) has lost tasks, or waits behind a long queue: its
    steps without a :class:`JobStep` row are queued again (a copy that finds its step done
    does nothing; at most ``window.limit`` steps a sweep), and the job is touched so the
    next sweeps leave it alone for another grace.
    Invoice runs of ``flask invoice-run`` run in that process, not on the queue, and are not
    swept (they resume when run again).
    """
    jobs = session.scalars(
        sa.select(Job)
        .where(
            Job.kind.in_(list(JOB_KINDS)),
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
            Job.updated_at < window.queued_before,
        )
        .order_by(Job.id)
        .limit(window.limit)
    ).all()
    todo: list[tuple[int, str, list[str]]] = []
    for job in jobs:
        keys = JOB_KINDS[job.kind].steps(job)
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
            JOB_KINDS[kind].queue_step(job_id, key)
            count += 1
    return count
