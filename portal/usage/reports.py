"""The quota usage report: rows, CSV and the background job that builds it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import os
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from portal.extensions import db, queue
from portal.ops.after_commit import after_commit
from portal.ops.audit import N_, Actor, AdminActionRefused
from portal.ops.jobs import RETRIES, _fail, _finish, _mark_running, _new_job, _step_done
from portal.ops.models import Job, JobStatus
from portal.tenancy.models import Tenant
from portal.usage.queries import quota_usage_report

log = logging.getLogger(__name__)


def start_quota_report(
    session: Session, tenant: Tenant, start: dt.date, end: dt.date, actor: Actor
) -> Job:
    """Queue the company's quota usage report for the days ``start`` to ``end`` inclusive.

    :raise AdminActionRefused: ``invalid_range`` when end is before start or the range
        spans more than a year.
    """
    if end < start or (end - start).days > 366:
        raise AdminActionRefused(
            "invalid_range", N_("Choose an end date after the start, at most one year later.")
        )
    params = {"company": str(tenant.public_id), "start": start.isoformat(), "end": end.isoformat()}
    job = _new_job(session, QUOTA_REPORT, tenant, params, 1, actor)
    job_id = job.id
    after_commit(session, lambda: quota_report_task(job_id))
    return job


#: Columns of the quota usage report, in CSV order.
REPORT_COLUMNS = ("company", "metric", "limit", "used", "percent", "over", "is_hard")


def _decimal_text(value: Decimal | None) -> str | None:
    """A Decimal as plain text without exponent or trailing zeros (``"12.5"``)."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text


def quota_report_rows(
    session: Session, tenant: Tenant, start: dt.date, end: dt.date
) -> list[dict[str, str | bool | None]]:
    """Usage in [start, end] against each quota, as JSON-safe rows (decimals as text)."""
    start_at = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    end_at = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return [
        {
            "company": str(tenant.public_id),
            "metric": row.metric,
            "limit": _decimal_text(row.limit),
            "used": _decimal_text(row.used),
            "percent": _decimal_text(row.percent),
            "over": row.over,
            "is_hard": row.is_hard,
        }
        for row in quota_usage_report(session, [tenant.id], start_at, end_at)
    ]


def rows_csv(rows: list[dict]) -> str:
    """The report rows as CSV text with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row[key] is None else row[key] for key in REPORT_COLUMNS})
    return out.getvalue()


QUOTA_REPORT = "quota_report"


#: The one step of a quota report.
REPORT_STEP = "report"


def build_quota_report(job_id: int) -> str:
    """Compute the quota usage report of a job and store it as rows and CSV."""
    with Session(db.engine) as session:
        job = session.get(Job, job_id)
        if job is None or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return "skipped"
        _mark_running(session, job_id)
        tenant = session.get_one(Tenant, job.tenant_id)
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


def report_steps(job: Job) -> list[str]:
    """The one counted step of a quota report job."""
    return [REPORT_STEP]


def queue_report_step(job_id: int, key: str) -> None:
    """Queue a quota report job's build again (the sweeper's recovery)."""
    quota_report_task(job_id)
