"""Admin pages: full page and fragment, filters and paging, confirmed actions, audit."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.settings import company_settings, settings_dict, update_company_settings
from portal.db import utcnow
from portal.invoices.actions import change_paid_state
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ops.models import AuditLogEntry, Job, JobStatus
from tests.factories.invoices import make_invoice

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(client, auth, world):
    auth.login(world.admin.email)
    return client


def _actions(session) -> list[str]:
    return list(session.scalars(sa.select(AuditLogEntry.action).order_by(AuditLogEntry.id)))


def _draft(world, month: int = 10) -> Invoice:
    start = dt.date(2026, month, 1)
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    return make_invoice(world.a.tenant, period_start=start, period_end=end, finalize=False)


def test_companies_list_and_search(admin, world):
    page = admin.get("/admin/").get_data(as_text=True)
    assert "Alpha Industries" in page and "Bravo Logistics" in page and "<html" in page
    fragment = admin.get("/admin/?q=brav", headers=HX)
    body = fragment.get_data(as_text=True)
    assert "Bravo Logistics" in body and "Alpha Industries" not in body and "<html" not in body
    assert "HX-Request" in fragment.headers["Vary"]
    assert "No companies match." in admin.get("/admin/?q=zzz").get_data(as_text=True)


def test_company_page_shows_settings_usage_and_invoices(admin, subscribed):
    tenant = subscribed.a.tenant
    page = admin.get(f"/admin/companies/{tenant.public_id}")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'name="billing_day"' in body and "Defaults apply" in body
    assert "<meter" in body and "over the quota" in body
    assert subscribed.a.invoice.number in body and "Cloud Platform" in body
    fragment = admin.get(f"/admin/companies/{tenant.public_id}", headers=HX).get_data(as_text=True)
    assert fragment.lstrip().startswith("{#") is False and 'id="settings-form"' in fragment
    assert "<html" not in fragment
    assert admin.get("/admin/companies/not-a-uuid").status_code == 404


def _form(**changes) -> dict:
    form = {
        "billing_day": "15",
        "payment_terms_days": "30",
        "discount_percent": "2,5",
        "auto_finalize": "on",
        "notes": "VIP",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_settings_form_saves_with_303_and_audit(admin, world, session):
    tenant = world.a.tenant
    response = admin.post(f"/admin/companies/{tenant.public_id}/settings", data=_form())
    assert response.status_code == 303
    settings = company_settings(session, tenant)
    assert settings.billing_day == 15 and str(settings.discount_percent) == "2.5000"
    assert settings.auto_finalize and not settings.auto_send
    assert _actions(session) == ["settings.update"]
    follow = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "saved" in follow


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("billing_day", "31", "Choose a day between 1 and 28."),
        ("billing_day", "abc", "Enter a whole number."),
        ("payment_terms_days", "999", "Enter between 0 and 365 days"),
        ("discount_percent", "150", "Enter a percentage between 0 and 100."),
        ("discount_percent", "x", "Enter a percentage between 0 and 100."),
    ],
)
def test_bad_settings_are_inline_errors(admin, world, session, field, value, message):
    url = f"/admin/companies/{world.a.tenant.public_id}/settings"
    response = admin.post(url, data=_form(**{field: value}))
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and message in body
    assert f'id="{field}-error"' in body and 'aria-invalid="true"' in body
    assert f'value="{value}"' in body  # what was typed stays
    assert _actions(session) == []
    fragment = admin.post(url, data=_form(**{field: value}), headers=HX).get_data(as_text=True)
    assert message in fragment and "<html" not in fragment


def test_invoice_list_filters_sort_and_pages(admin, world, session):
    for month in range(1, 8):
        start = dt.date(2025, month, 1)
        make_invoice(
            world.b.tenant,
            period_start=start,
            period_end=start + dt.timedelta(days=27),
            issue_date=start + dt.timedelta(days=28),
        )
    session.commit()
    body = admin.get("/admin/invoices").get_data(as_text=True)
    assert "1–9 of 9" in body and "<html" in body
    only_b = admin.get("/admin/invoices?company=bravo&sort=issue_date&direction=asc", headers=HX)
    text = only_b.get_data(as_text=True)
    assert "1–8 of 8" in text and "<html" not in text and "Alpha Industries" not in text
    ranged = admin.get("/admin/invoices?issued_from=2025-02-01&issued_to=2025-04-30")
    assert "1–3 of 3" in ranged.get_data(as_text=True)
    assert "1–0" not in admin.get("/admin/invoices?status=draft").get_data(as_text=True)
    paid = admin.get("/admin/invoices?status=paid").get_data(as_text=True)
    assert "No invoices" in paid


def test_invoice_list_paging_in_sql(admin, world, session, monkeypatch):
    from portal.web.admin import invoices

    monkeypatch.setattr(invoices, "PAGE_SIZE", 1)
    first = admin.get("/admin/invoices?sort=company&direction=asc").get_data(as_text=True)
    assert "1–1 of 2" in first and "Alpha Industries" in first and 'id="page-next"' in first
    second = admin.get("/admin/invoices?sort=company&direction=asc&page=2").get_data(as_text=True)
    assert "2–2 of 2" in second and world.b.invoice.number in second


@pytest.mark.parametrize(
    "query",
    [
        "issued_from=31.12.2025",
        "issued_from=2026-05-01&issued_to=2026-01-01",
        "status=bogus",
        "sort=evil;drop",
        "page=0",
        "page=abc",
        "direction=sideways",
    ],
)
def test_bad_list_input_is_a_message(admin, world, query):
    response = admin.get(f"/admin/invoices?{query}")
    assert response.status_code == 200
    if "direction" not in query:
        assert "Some filters could not be used" in response.get_data(as_text=True)


def test_invoice_page_links_to_document_report(admin, world):
    body = admin.get(f"/admin/invoices/{world.a.invoice.public_id}").get_data(as_text=True)
    assert f"/admin/invoices/{world.a.invoice.public_id}/documents" in body
    assert 'id="action-mark-paid"' in body and 'id="action-delete"' not in body


def test_mark_paid_needs_confirmation(admin, world, session):
    invoice = world.a.invoice
    confirm = admin.get(f"/admin/invoices/{invoice.public_id}/confirm/mark-paid")
    assert confirm.status_code == 200 and 'name="confirmed" value="yes"' in confirm.get_data(
        as_text=True
    )
    unconfirmed = admin.post(f"/admin/invoices/{invoice.public_id}/actions/mark-paid")
    assert (
        unconfirmed.status_code == 303 and "/confirm/mark-paid" in unconfirmed.headers["Location"]
    )
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == InvoiceStatus.FINALIZED
    done = admin.post(
        f"/admin/invoices/{invoice.public_id}/actions/mark-paid", data={"confirmed": "yes"}
    )
    assert done.status_code == 303
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == InvoiceStatus.PAID
    assert "marked as paid" in admin.get(done.headers["Location"]).get_data(as_text=True)


def test_every_action_writes_an_audit_entry(admin, world, session, mailbox):
    a, b = world.a.invoice, world.b.invoice
    draft = _draft(world)
    session.commit()

    def act(invoice, action, **form):
        response = admin.post(
            f"/admin/invoices/{invoice.public_id}/actions/{action}",
            data={"confirmed": "yes", **form},
        )
        assert response.status_code == 303
        return admin.get(response.headers["Location"]).get_data(as_text=True)

    act(a, "mark-paid")
    act(a, "mark-unpaid")
    act(a, "send")
    act(b, "credit", reason="Goodwill", scope="lines", **{"line-2": "1"})
    act(b, "void")
    act(draft, "delete")
    company = admin.post(
        f"/admin/companies/{world.a.tenant.public_id}/jobs",
        data={"kind": "quota_report", "start": "2026-01-01", "end": "2026-01-31"},
    )
    assert company.status_code == 303 and "/admin/jobs/" in company.headers["Location"]
    assert _actions(session) == [
        "invoice.mark_paid",
        "invoice.mark_unpaid",
        "invoice.send",
        "invoice.credit",
        "invoice.void",
        "invoice.delete_draft",
        "job.quota_report",
    ]
    entry = session.scalars(sa.select(AuditLogEntry).order_by(AuditLogEntry.id)).first()
    assert entry.actor_user_id == world.admin.id and entry.actor_label == world.admin.email


def test_finalized_invoice_cannot_be_deleted(admin, world, session):
    invoice = world.a.invoice
    response = admin.post(
        f"/admin/invoices/{invoice.public_id}/actions/delete", data={"confirmed": "yes"}
    )
    assert response.status_code == 303
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "A finalized invoice cannot be deleted; void it or issue a credit note." in page
    session.expire_all()
    assert session.get(Invoice, invoice.id) is not None
    assert _actions(session) == []


@pytest.mark.parametrize(
    ("action", "form"),
    [("mark-unpaid", {}), ("credit", {"reason": ""}), ("credit", {"scope": "lines"})],
)
def test_refused_actions_are_messages(admin, world, action, form):
    response = admin.post(
        f"/admin/invoices/{world.a.invoice.public_id}/actions/{action}",
        data={"confirmed": "yes", "reason": "x", **form},
    )
    assert response.status_code == 303
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "flash--error" in page


def test_unknown_action_is_404(admin, world):
    url = f"/admin/invoices/{world.a.invoice.public_id}"
    assert admin.get(f"{url}/confirm/explode").status_code == 404
    assert admin.post(f"{url}/actions/explode", data={"confirmed": "yes"}).status_code == 404


def test_generate_now_with_confirmation(admin, subscribed, session):
    tenant = subscribed.a.tenant
    month = utcnow().strftime("%Y-%m")
    confirm = admin.get(f"/admin/companies/{tenant.public_id}/generate?month={month}")
    assert confirm.status_code == 200 and f'value="{month}"' in confirm.get_data(as_text=True)
    response = admin.post(f"/admin/companies/{tenant.public_id}/generate", data={"month": month})
    assert response.status_code == 303 and "/admin/invoices/" in response.headers["Location"]
    bad = admin.post(f"/admin/companies/{tenant.public_id}/generate", data={"month": "13/2026"})
    assert bad.status_code == 303
    assert "Enter a month as YYYY-MM." in admin.get(bad.headers["Location"]).get_data(as_text=True)
    assert _actions(session) == ["invoice.generate"]


def test_jobs_page_progress_and_downloads(admin, subscribed, session):
    tenant = subscribed.a.tenant
    today = utcnow().date()
    response = admin.post(
        f"/admin/companies/{tenant.public_id}/jobs",
        data={"kind": "quota_report", "start": today.replace(day=1).isoformat(), "end": str(today)},
    )
    job_url = response.headers["Location"]
    page = admin.get(job_url).get_data(as_text=True)
    assert 'value="100"' in page and "Download CSV" in page and "hx-trigger" not in page
    csv = admin.get(f"{job_url}/report.csv")
    assert csv.mimetype == "text/csv" and "api_calls,1000,1200,120" in csv.get_data(as_text=True)
    assert admin.get(f"{job_url}/report.json").get_json()["rows"][0]["used"] == "1200"
    listing = admin.get("/admin/jobs").get_data(as_text=True)
    assert "Quota usage report" in listing and "<html" in listing
    run = admin.post("/admin/jobs", data={"month": utcnow().strftime("%Y-%m")})
    assert run.status_code == 303
    assert "2 invoices, 2 finalized" in admin.get(run.headers["Location"]).get_data(as_text=True)
    assert admin.get(f"{run.headers['Location']}/report.csv").status_code == 404
    bad = admin.post("/admin/jobs", data={"month": "someday"})
    assert "Enter a month as YYYY-MM." in admin.get(bad.headers["Location"]).get_data(as_text=True)
    assert admin.get("/admin/jobs/nope").status_code == 404


def test_unfinished_job_polls(admin, world, session, actor):
    job = Job(kind="quota_report", params={}, status=JobStatus.RUNNING, progress_total=4)
    job.progress_done = 1
    session.add(job)
    session.commit()
    fragment = admin.get(f"/admin/jobs/{job.public_id}", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in fragment and 'value="25"' in fragment
    assert "<html" not in fragment
    listing = admin.get("/admin/jobs", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in listing and "1 of 4 (25 %)" in listing


def test_audit_page_filters_and_shows_changes(admin, world, session, actor):
    values = settings_dict(company_settings(session, world.a.tenant))
    update_company_settings(session, world.a.tenant, {**values, "billing_day": 9}, actor)
    update_company_settings(session, world.a.tenant, {**values, "billing_day": 12}, actor)
    change_paid_state(session, world.b.invoice, True, actor)
    session.commit()
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "3 entries" in page and "billing_day" in page and "9 → 12" in page
    assert "finalized → paid" in page
    only = admin.get("/admin/audit?action=invoice.", headers=HX).get_data(as_text=True)
    assert "1 entry" in only and "<html" not in only
    assert "1 entry" in admin.get("/admin/audit?company=bravo").get_data(as_text=True)
    assert "3 entries" in admin.get("/admin/audit?actor=PLATFORM").get_data(as_text=True)
    assert "0 entries" in admin.get("/admin/audit?since=2999-01-01").get_data(as_text=True)
    bad = admin.get("/admin/audit?since=yesterday&page=-1")
    assert bad.status_code == 200 and "Dates must look like" in bad.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/invoices",
        "/admin/jobs",
        "/admin/audit",
    ],
)
def test_tenants_get_404(client, auth, world, path):
    auth.login(world.a.owner.email)
    assert client.get(path).status_code == 404
