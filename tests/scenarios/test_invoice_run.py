"""The invoice run: batched, repeatable, resumable; numbers gapless under concurrency."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import CompanyBillingSettings, PriceModel
from portal.extensions import db
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import Invoice
from portal.invoices.run import run_invoices
from portal.invoices.states import InvoiceStatus
from portal.ops.models import Job, JobStatus
from tests.conftest import ON_POSTGRES
from tests.factories.invoices import make_invoice
from tests.scenarios.conftest import D, subscribe


@pytest.fixture
def tenants(catalog, make_tenant):
    platform = catalog.price("Platform", PriceModel.FLAT, unit_amount=D("49.00"))
    result = []
    for _ in range(7):
        tenant = make_tenant("DE")
        subscribe(tenant, [(platform, 1)])
        result.append(tenant)
    db.session.commit()
    return result


def _numbers() -> list[str]:
    return sorted(db.session.scalars(sa.select(Invoice.number).where(Invoice.number.is_not(None))))


def test_run_bills_everyone_once_in_batches(tenants):
    batches = []
    result = run_invoices(db.session, "2026-10", batch_size=3, on_batch=batches.append)
    assert (result.created, result.finalized, result.skipped) == (7, 7, 0)
    assert batches == [3, 3, 1]
    assert _numbers() == [f"INV-2026-{n:05d}" for n in range(1, 8)]
    issue_dates = set(db.session.scalars(sa.select(Invoice.issue_date)))
    assert issue_dates == {dt.date(2026, 11, 1)}
    job = db.session.scalars(sa.select(Job)).one()
    assert job.status == JobStatus.SUCCEEDED and job.percent == 100
    assert job.result["created"] == 7

    again = run_invoices(db.session, "2026-10", batch_size=3)
    assert (again.created, again.skipped) == (0, 7)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 7


def test_a_crashed_run_resumes_without_duplicates(tenants):
    def crash_after_first_batch(done: int) -> None:
        raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        run_invoices(db.session, "2026-10", batch_size=3, on_batch=crash_after_first_batch)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 3
    failed = db.session.scalars(sa.select(Job)).one()
    assert failed.status == JobStatus.FAILED and "worker killed" in failed.error

    result = run_invoices(db.session, "2026-10", batch_size=3)
    assert (result.created, result.skipped) == (4, 3)
    assert _numbers() == [f"INV-2026-{n:05d}" for n in range(1, 8)]
    jobs = db.session.scalars(sa.select(Job)).all()
    assert len(jobs) == 1 and jobs[0].status == JobStatus.SUCCEEDED  # the same job resumed


def test_companies_without_auto_finalize_keep_drafts(tenants):
    db.session.add(CompanyBillingSettings(tenant_id=tenants[0].id, auto_finalize=False))
    db.session.commit()
    result = run_invoices(db.session, "2026-10")
    assert (result.created, result.finalized) == (7, 6)
    draft = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenants[0].id)).one()
    assert draft.status == InvoiceStatus.DRAFT


def test_cli_invoice_run(runner, tenants):
    result = runner.invoke(args=["invoice-run", "--period", "2026-10", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "7 invoices created, 7 finalized, 0 tenants already billed" in result.output
    again = runner.invoke(args=["invoice-run", "--period", "2026-10"])
    assert "0 invoices created, 0 finalized, 7 tenants already billed" in again.output
    bad = runner.invoke(args=["invoice-run", "--period", "October"])
    assert bad.exit_code != 0 and "2026-10" in bad.output


@pytest.mark.skipif(not ON_POSTGRES, reason="concurrent writers need PostgreSQL")
def test_eight_threads_finalizing_400_invoices_get_400_gapless_numbers(app, seller, make_tenant):
    drafts = []
    for _ in range(50):
        tenant = make_tenant("DE")
        for month in range(1, 9):
            drafts.append(
                make_invoice(
                    tenant,
                    finalize=False,
                    period_start=dt.date(2026, month, 1),
                    period_end=dt.date(2026, month, 28),
                ).id
            )
    db.session.commit()
    engine = db.engine  # threads have no app context
    errors = []

    def finalize(ids: list[int]) -> None:
        try:
            with Session(engine) as session:
                for invoice_id in ids:
                    finalize_invoice(
                        session, session.get(Invoice, invoice_id), issue_date=dt.date(2026, 11, 1)
                    )
                    session.commit()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=finalize, args=(drafts[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _numbers() == [f"INV-2026-{n:05d}" for n in range(1, 401)]


KILLED_RUN = """
import os, signal, sys
from portal import create_app
from portal.extensions import db
from portal.invoices.run import run_invoices

app = create_app({"SQLALCHEMY_DATABASE_URI": sys.argv[1]})
with app.app_context():
    run_invoices(db.session, "2026-10", batch_size=3,
                 on_batch=lambda done: os.kill(os.getpid(), signal.SIGKILL))
"""


def test_a_killed_process_resumes_without_duplicates(tenants, database_url, tmp_path):
    import os
    import subprocess
    import sys

    db.session.remove()  # let the other process write
    env = {**os.environ, "PORTAL_ENV": "development", "QUEUE_SQLITE_PATH": str(tmp_path / "q")}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, database_url],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 3
    result = run_invoices(db.session, "2026-10", batch_size=3)
    assert (result.created, result.skipped) == (4, 3)
    assert _numbers() == [f"INV-2026-{n:05d}" for n in range(1, 8)]
