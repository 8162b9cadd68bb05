"""The admin console in real Chromium: settings, a confirmed payment, a live progress bar."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from portal.extensions import db
from portal.ops.models import Job, JobStatus
from tests.e2e.conftest import login, run_axe, screenshot_both

pytestmark = pytest.mark.e2e


def test_admin_changes_a_setting_marks_paid_and_watches_a_job(page, browser, live_server, world):
    invoice = world.a.invoice
    login(page, world.admin.email)
    page.goto("/admin/")
    page.get_by_role("link", name="Alpha Industries").click()
    expect(page.get_by_role("heading", name="Alpha Industries")).to_be_visible()
    page.get_by_label("Billing day (1–28)").fill("31")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#billing_day-error")).to_have_text("Choose a day between 1 and 28.")
    page.get_by_label("Billing day (1–28)").fill("20")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Billing settings of Alpha Industries saved.")).to_be_visible()
    expect(page.get_by_label("Billing day (1–28)")).to_have_value("20")
    screenshot_both(page, "admin-company")

    page.get_by_role("link", name=invoice.number).click()
    page.locator("#action-mark-paid").click()
    expect(page.get_by_role("heading", name="Mark as paid")).to_be_visible()
    screenshot_both(page, "admin-confirm")
    page.get_by_role("button", name="Yes, mark as paid").click()
    expect(page.get_by_text(f"Invoice {invoice.number} is marked as paid.")).to_be_visible()
    expect(page.locator("h1 .badge--paid")).to_be_visible()

    job = Job(kind="invoice_generation", params={"month": "2026-11"}, progress_total=4)
    job.status = JobStatus.RUNNING
    job.progress_done = 0
    db.session.add(job)
    db.session.commit()
    page.goto(f"/admin/jobs/{job.public_id}")
    bar = page.locator(f"#progress-{job.public_id}")
    expect(bar).to_have_attribute("value", "0")
    for done in range(1, 5):  # the worker's progress, as it commits it
        time.sleep(0.6)
        job.progress_done = done
        if done == 4:
            job.status = JobStatus.SUCCEEDED
        db.session.commit()
    expect(bar).to_have_attribute("value", "100", timeout=10_000)
    expect(page.get_by_text("4 of 4 (100 %)")).to_be_visible()
    expect(page.locator("#job-detail")).not_to_have_attribute("hx-trigger", re.compile("."))
    screenshot_both(page, "admin-job")

    page.goto("/admin/audit")
    expect(page.get_by_role("rowheader", name="invoice.mark_paid")).to_be_visible()
    screenshot_both(page, "admin-audit")
    state = page.context.storage_state()
    for path in (
        "/admin/",
        f"/admin/companies/{world.a.tenant.public_id}",
        f"/admin/invoices/{invoice.public_id}",
        f"/admin/invoices/{invoice.public_id}/confirm/credit",
        "/admin/invoices",
        "/admin/jobs",
        f"/admin/jobs/{job.public_id}",
        "/admin/audit",
    ):
        assert run_axe(browser, live_server.url(path), state) == [], path
    assert page.console_errors == []
