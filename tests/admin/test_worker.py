"""Admin jobs through real consumers (`flask --app wsgi worker`) on a Redis queue.

Each xdist worker uses its own Redis database, so a consumer never picks up a task whose
job lives in another test's database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from portal.db import utcnow
from portal.extensions import db, queue
from portal.invoices.models import Invoice
from portal.invoices.run import start_invoice_generation, start_invoice_run
from portal.ops.audit import Actor
from portal.ops.jobs import job_dict
from portal.ops.models import Job, JobStatus
from portal.usage.reports import start_quota_report
from tests.admin.conftest import subscribe_all
from tests.conftest import REDIS_TEST_URL
from tests.factories.tenancy import TenantFactory

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))
LINE = re.compile(r"invoice_generation job=(\d+) tenant=(\d+) pid=(\d+)")


def _redis_url() -> str:
    """REDIS_TEST_URL with a database number of this xdist worker (14, 13, 12, …)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw-1")
    number = 13 - int(worker.removeprefix("gw"))
    return re.sub(r"/\d*$", "", REDIS_TEST_URL.rstrip("/")) + f"/{max(number, 1)}"


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_app(app, world):
    """The test app moved to a Redis queue (nothing runs in the request), emptied before
    and after."""
    url = _redis_url()
    if not _redis_answers(url):
        pytest.skip(f"Redis does not answer at {url} (set REDIS_TEST_URL)")
    app.config.update(QUEUE_IMMEDIATE=False, REDIS_URL=url)
    queue.init_app(app)
    queue.flush()
    yield app
    queue.flush()


class Consumer:
    """A `flask --app wsgi worker` subprocess on the test database and queue."""

    def __init__(self, app, log_path: Path):
        env = {
            **os.environ,
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "QUEUE_IMMEDIATE": "0",
            "SECRET_KEY": "test-secret-key",
            "SMTP_URL": app.config["SMTP_URL"],
            "PYTHONWARNINGS": "ignore",
        }
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                FLASK,
                "--app",
                "wsgi",
                "worker",
                "--no-periodic",
                "--delay",
                "0.05",
                "--max-delay",
                "0.2",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_started(self, timeout: float = 90) -> None:
        """Until huey says the consumer runs (start-up is slow on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Huey consumer started" in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"consumer exited: {self.log_path.read_text()}")
            time.sleep(0.1)
        raise AssertionError(f"consumer did not start: {self.log_path.read_text()}")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)  # huey: finish the running task, then stop
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        return self.log_path.read_text()


@pytest.fixture
def consumers(redis_app, tmp_path):
    started: list[Consumer] = []

    def start(count: int) -> list[Consumer]:
        for n in range(count):
            started.append(Consumer(redis_app, tmp_path / f"consumer-{len(started) + n}.log"))
        return started

    yield start
    for consumer in started:
        if consumer.process.poll() is None:
            consumer.stop()


def _wait_for_job(job_id: int, timeout: float = 90) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()  # a fresh snapshot each time, and no lock held meanwhile
        job = db.session.get(Job, job_id)
        db.session.refresh(job)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job_dict(job)}")


def _actor(world) -> Actor:
    return Actor(label=world.admin.email, user_id=world.admin.id)


def test_company_jobs_run_on_a_real_consumer(redis_app, world, consumers):
    subscribe_all(db.session, [world.a.tenant])
    month = utcnow().strftime("%Y-%m")
    job = start_invoice_generation(db.session, world.a.tenant, month, _actor(world))
    today = utcnow().date()
    report = start_quota_report(
        db.session, world.a.tenant, today.replace(day=1), today, _actor(world)
    )
    db.session.commit()
    assert queue.pending_count() == 2  # queued in Redis, not run in the request
    assert db.session.get(Job, job.id).status == JobStatus.QUEUED
    consumers(1)
    job = _wait_for_job(job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total, job.percent) == (1, 1, 100)
    assert job.result["created"] == 1
    report = _wait_for_job(report.id)
    assert report.status == JobStatus.SUCCEEDED, report.error
    assert report.result["rows"][0]["used"] == "1200"
    assert report.result["csv"].startswith("company,metric,limit,used")


def test_two_consumers_share_one_invoice_run(redis_app, world, consumers):
    seller = world.a.tenant.seller
    tenants = [world.a.tenant, world.b.tenant] + [TenantFactory(seller=seller) for _ in range(10)]
    db.session.commit()
    subscribe_all(db.session, tenants)
    pair = consumers(2)
    for consumer in pair:
        consumer.wait_started()
    # Both are blocked on the Redis queue before the run is queued: Redis hands each of
    # them a task, so neither can take the whole run alone.
    time.sleep(1.0)
    job = start_invoice_run(db.session, utcnow().strftime("%Y-%m"), _actor(world))
    db.session.commit()
    job = _wait_for_job(job.id)
    logs = [consumer.stop() for consumer in pair]
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total) == (12, 12)
    per_consumer = [{int(t) for _, t, _ in LINE.findall(log)} for log in logs]
    billed = [int(t) for log in logs for _, t, _ in LINE.findall(log)]
    assert sorted(billed) == sorted(t.id for t in tenants)  # nobody twice, nobody missed
    assert all(per_consumer), f"one consumer did all the work: {per_consumer}"
    counts = dict(
        db.session.execute(
            sa.select(Invoice.tenant_id, sa.func.count())
            .where(Invoice.id.not_in([world.a.invoice.id, world.b.invoice.id]))
            .group_by(Invoice.tenant_id)
        ).all()
    )
    assert counts == {t.id: 1 for t in tenants}
    assert job.result["created"] == 12
