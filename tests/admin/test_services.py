"""Admin services: validation, refusals, ledger movements and one audit entry per write."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings
from portal.catalog.settings import (
    SettingsInvalid,
    company_settings,
    settings_dict,
    update_company_settings,
)
from portal.db import utcnow
from portal.invoices.actions import change_paid_state, credit, delete_draft_invoice, send, void
from portal.invoices.models import Invoice
from portal.invoices.run import generate_now, start_invoice_generation, start_invoice_run
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ledger.services import balance
from portal.ops.audit import AdminActionRefused
from portal.ops.jobs import job_dict
from portal.ops.models import AuditLogEntry, Job, JobStatus
from portal.usage.reports import start_quota_report
from tests.factories.invoices import make_invoice


def _audits(session, action: str | None = None) -> list[AuditLogEntry]:
    query = sa.select(AuditLogEntry).order_by(AuditLogEntry.id)
    if action:
        query = query.where(AuditLogEntry.action == action)
    return list(session.scalars(query))


def _valid(**changes) -> dict:
    values = {
        "billing_day": 15,
        "payment_terms_days": 30,
        "auto_finalize": False,
        "auto_send": True,
        "auto_collect": False,
        "show_drafts_to_tenant": True,
        "discount_percent": "12.5",
        "notes": "Key account",
    }
    values.update(changes)
    return values


def test_default_settings_are_unsaved(world, session):
    settings = company_settings(session, world.a.tenant)
    assert settings.id is None
    assert settings_dict(settings) == {
        "billing_day": 1,
        "payment_terms_days": None,
        "auto_finalize": True,
        "auto_send": False,
        "auto_collect": True,
        "show_drafts_to_tenant": False,
        "discount_percent": "0",
        "notes": None,
        "self_service_quantity": True,
        "self_service_price_switch": True,
        "self_service_cancel": True,
    }


def test_update_settings_stores_and_audits_before_after(world, session, actor):
    tenant = world.a.tenant
    update_company_settings(session, tenant, _valid(), actor)
    session.commit()
    stored = session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant.id)
    ).one()
    assert stored.discount_percent == Decimal("12.5")
    assert settings_dict(stored)["discount_percent"] == "12.5"
    update_company_settings(session, tenant, _valid(billing_day=3), actor)
    session.commit()
    first, second = _audits(session, "settings.update")
    assert first.data.get("before") is None and first.data["after"]["billing_day"] == 15
    assert second.data["before"]["billing_day"] == 15 and second.data["after"]["billing_day"] == 3
    assert second.actor_label == world.admin.email and second.actor_user_id == world.admin.id
    assert second.target_id == str(tenant.public_id) and second.tenant_id == tenant.id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("billing_day", 0),
        ("billing_day", 29),
        ("billing_day", "x"),
        ("billing_day", True),
        ("billing_day", None),
        ("payment_terms_days", -1),
        ("payment_terms_days", 366),
        ("discount_percent", "100.01"),
        ("discount_percent", "-1"),
        ("discount_percent", "abc"),
        ("discount_percent", "1.00001"),
        ("discount_percent", "NaN"),
        ("auto_send", "yes"),
        ("notes", "x" * 2001),
        ("unknown", 1),
    ],
)
def test_invalid_settings_write_nothing(world, session, actor, field, value):
    with pytest.raises(SettingsInvalid) as caught:
        update_company_settings(session, world.a.tenant, _valid(**{field: value}), actor)
    assert set(caught.value.errors) == {field}
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(CompanyBillingSettings)) == 0
    assert _audits(session) == []


def test_missing_field_is_an_error(world, session, actor):
    values = _valid()
    del values["notes"]
    with pytest.raises(SettingsInvalid) as caught:
        update_company_settings(session, world.a.tenant, values, actor)
    assert caught.value.errors == {"notes": "This field is required."}


def test_mark_paid_then_unpaid_moves_the_ledger(world, session, actor):
    invoice = world.a.invoice
    tenant = world.a.tenant
    owed = balance(session, tenant)
    change_paid_state(session, invoice, True, actor)
    session.commit()
    assert invoice.status == InvoiceStatus.PAID
    assert balance(session, tenant).minor == owed.minor - invoice.amount_due_minor
    with pytest.raises(AdminActionRefused) as caught:
        change_paid_state(session, invoice, True, actor)
    assert caught.value.code == "already_paid"
    change_paid_state(session, invoice, False, actor)
    session.commit()
    assert invoice.status == InvoiceStatus.SENT
    assert balance(session, tenant) == owed
    kinds = session.scalars(
        sa.select(LedgerMovement.kind).where(LedgerMovement.invoice_id == invoice.id)
    ).all()
    assert MovementKind.PAYMENT in kinds and MovementKind.ADJUSTMENT in kinds
    assert [a.action for a in _audits(session)] == ["invoice.mark_paid", "invoice.mark_unpaid"]
    paid = _audits(session, "invoice.mark_paid")[0]
    assert paid.data["before"]["status"] == "finalized" and paid.data["after"]["status"] == "paid"


def test_unpaid_refused_unless_paid(world, session, actor):
    with pytest.raises(AdminActionRefused) as caught:
        change_paid_state(session, world.a.invoice, False, actor)
    assert caught.value.code == "not_paid"
    draft = make_invoice(
        world.a.tenant,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
        finalize=False,
    )
    with pytest.raises(AdminActionRefused) as caught:
        change_paid_state(session, draft, True, actor)
    assert caught.value.code == "invalid_state"


def test_finalized_invoice_cannot_be_deleted(world, session, actor):
    with pytest.raises(AdminActionRefused) as caught:
        delete_draft_invoice(session, world.a.invoice, actor)
    assert caught.value.code == "not_a_draft"
    assert caught.value.message == (
        "A finalized invoice cannot be deleted; void it or issue a credit note."
    )
    assert _audits(session) == []


def test_draft_is_deleted_with_an_audit_entry(world, session, actor):
    draft = make_invoice(
        world.a.tenant,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
        finalize=False,
    )
    public_id = str(draft.public_id)
    delete_draft_invoice(session, draft, actor)
    session.commit()
    assert session.scalars(sa.select(Invoice).where(Invoice.id == draft.id)).first() is None
    (entry,) = _audits(session, "invoice.delete_draft")
    assert entry.target_id == public_id and entry.data["before"]["status"] == "draft"


def test_void_and_credit(world, session, actor):
    void(session, world.a.invoice, actor)
    session.commit()
    assert world.a.invoice.status == InvoiceStatus.VOID
    with pytest.raises(AdminActionRefused) as caught:
        void(session, world.a.invoice, actor)
    assert caught.value.code == "invalid_state"
    note = credit(session, world.b.invoice, actor, reason="Goodwill", lines={2: 1})
    session.commit()
    assert note.amount_due_minor > 0 and world.b.invoice.amount_credited_minor > 0
    with pytest.raises(AdminActionRefused) as caught:
        credit(session, world.b.invoice, actor, reason=" ")
    assert caught.value.code == "credit_refused"
    with pytest.raises(AdminActionRefused) as caught:
        credit(session, world.b.invoice, actor, reason="x", lines={9: 1})
    assert caught.value.code == "unknown_line"
    assert [a.action for a in _audits(session)] == ["invoice.void", "invoice.credit"]


def test_send_queues_an_email_and_refuses_drafts(world, session, actor, mailbox):
    email = send(session, world.a.invoice, actor)
    session.commit()
    assert world.a.invoice.status == InvoiceStatus.SENT and email.to_addrs
    assert mailbox.wait_for(1)
    draft = make_invoice(
        world.a.tenant,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
        finalize=False,
    )
    with pytest.raises(AdminActionRefused) as caught:
        send(session, draft, actor)
    assert caught.value.code == "not_finalized"
    assert [a.action for a in _audits(session)] == ["invoice.send"]


def test_generate_now_follows_auto_finalize(subscribed, session, actor):
    month = utcnow().strftime("%Y-%m")
    tenant = subscribed.a.tenant
    invoice = generate_now(session, tenant, month, actor)
    session.commit()
    assert invoice.status == InvoiceStatus.FINALIZED and invoice.number
    assert generate_now(session, tenant, month, actor).id == invoice.id
    other = subscribed.b.tenant
    values = settings_dict(company_settings(session, other))
    update_company_settings(session, other, {**values, "auto_finalize": False}, actor)
    assert generate_now(session, other, month, actor).status == InvoiceStatus.DRAFT
    with pytest.raises(AdminActionRefused) as caught:
        generate_now(session, tenant, "2026-13", actor)
    assert caught.value.code == "invalid_month"
    with pytest.raises(AdminActionRefused) as caught:
        generate_now(session, tenant, "2019-01", actor)
    assert caught.value.code == "nothing_to_bill"


def test_jobs_run_immediately_in_tests(subscribed, session, actor):
    month = utcnow().strftime("%Y-%m")
    job = start_invoice_generation(session, subscribed.a.tenant, month, actor)
    assert job.status == JobStatus.QUEUED
    session.commit()
    session.expire_all()
    job = session.get(Job, job.id)
    data = job_dict(job)
    assert data["status"] == "succeeded", data
    assert data["progress"] == {"done": 1, "total": 1, "percent": 100}
    assert data["result"]["created"] == 1 and len(data["result"]["invoices"]) == 1

    today = utcnow().date()
    report = start_quota_report(
        session, subscribed.a.tenant, today.replace(day=1), today, actor
    )
    session.commit()
    session.expire_all()
    data = job_dict(session.get(Job, report.id))
    assert data["status"] == "succeeded", data
    (row,) = data["result"]["rows"]
    assert row["metric"] == "api_calls" and row["used"] == "1200" and row["limit"] == "1000"
    assert row["over"] is True and row["percent"] == "120"
    assert data["result"]["csv"].splitlines()[0] == "company,metric,limit,used,percent,over,is_hard"
    assert [a.action for a in _audits(session)] == ["job.invoice_generation", "job.quota_report"]


def test_quota_report_range_is_checked(world, session, actor):
    with pytest.raises(AdminActionRefused) as caught:
        start_quota_report(
            session, world.a.tenant, dt.date(2026, 2, 1), dt.date(2026, 1, 1), actor
        )
    assert caught.value.code == "invalid_range"


def test_invoice_run_splits_by_company(subscribed, session, actor):
    month = utcnow().strftime("%Y-%m")
    job = start_invoice_run(session, month, actor)
    assert job.progress_total == 2
    session.commit()
    session.expire_all()
    data = job_dict(session.get(Job, job.id))
    assert data["status"] == "succeeded" and data["result"]["created"] == 2
    assert "tenant_ids" not in data["params"]
