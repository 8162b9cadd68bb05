"""Admin jobs: the list with live progress bars, one job, its report downloads."""

from __future__ import annotations

import json

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from portal.db import utcnow
from portal.extensions import db
from portal.invoices import run as invoice_run
from portal.ops.audit import AdminActionRefused
from portal.ops.jobs import job_dict
from portal.ops.models import Job, JobStatus
from portal.ops.queries import recent_jobs
from portal.tenancy.models import Tenant
from portal.tenancy.queries import tenants_by_id
from portal.usage.reports import QUOTA_REPORT
from portal.web.admin.blueprint import bp
from portal.web.admin.common import current_actor, load_job, refused
from portal.web.guards import admin_view
from portal.web.htmx import render_page

#: Jobs shown on the jobs page.
RECENT_JOBS = 50
UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


def _companies(jobs: list[Job]) -> dict[int, Tenant]:
    ids = {job.tenant_id for job in jobs if job.tenant_id}
    if not ids:
        return {}
    return tenants_by_id(db.session, ids)


@bp.get("/jobs")
@admin_view
def jobs():
    """Recent jobs; while any is unfinished the list polls itself (htmx) every second."""
    rows = recent_jobs(db.session, limit=RECENT_JOBS)
    return render_page(
        "admin/jobs.html",
        "admin/_jobs.html",
        jobs=rows,
        companies=_companies(rows),
        polling=any(job.status in UNFINISHED for job in rows),
        this_month=utcnow().strftime("%Y-%m"),
    )


@bp.post("/jobs")
@admin_view
def start_invoice_run():
    """Queue the invoice run of a month for every company still to bill."""
    try:
        job = invoice_run.start_invoice_run(
            db.session, request.form.get("month", "").strip(), current_actor()
        )
    except AdminActionRefused as exc:
        return refused(exc, url_for("admin.jobs"))
    flash(_("The invoice run is queued."), "success")
    return redirect(url_for("admin.job", job_id=job.public_id), code=303)


@bp.get("/jobs/<job_id>")
@admin_view
def job(job_id: str):
    """One job: progress bar (polling until it ends), parameters, result or error."""
    row = load_job(job_id)
    return render_page(
        "admin/job.html",
        "admin/_job.html",
        job=row,
        data=job_dict(row),
        company=db.session.get(Tenant, row.tenant_id) if row.tenant_id else None,
        polling=row.status in UNFINISHED,
    )


def _report(job_id: str) -> tuple[Job, dict]:
    """A finished quota report job and its result, or 404."""
    row = load_job(job_id)
    if row.kind != QUOTA_REPORT or row.status != JobStatus.SUCCEEDED or not row.result:
        abort(404)
    return row, row.result


@bp.get("/jobs/<job_id>/report.csv")
@admin_view
def report_csv(job_id: str):
    """The quota usage report of a finished job as CSV."""
    _row, result = _report(job_id)
    return Response(
        result["csv"],
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="quota-report-{job_id}.csv"'},
    )


@bp.get("/jobs/<job_id>/report.json")
@admin_view
def report_json(job_id: str):
    """The quota usage report of a finished job as JSON rows."""
    row, result = _report(job_id)
    body = json.dumps({"params": job_dict(row)["params"], "rows": result["rows"]})
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="quota-report-{job_id}.json"'},
    )
