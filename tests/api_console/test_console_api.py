"""Contract tests of the provider-console billing API, operation by operation."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.ledger.models import LedgerMovement
from portal.ops.models import AuditLogEntry, Job
from portal.tenancy.models import TokenKind
from portal.tenancy.services import create_api_token
from tests.api_console.conftest import ConsoleClient, admin_token
from tests.factories.invoices import make_invoice

RANGE = {"fromDate": "2026-01-01", "toDate": "2026-12-31"}


def _settings_url(tenant) -> str:
    return f"/{tenant.public_id}/billing/settings/"


def _audits(session, action: str) -> int:
    return session.scalar(
        sa.select(sa.func.count()).select_from(AuditLogEntry).where(AuditLogEntry.action == action)
    )


# --- authentication and the error shape ----------------------------------------------------


def test_errors_have_the_reference_shape_and_tenant_tokens_are_refused(client, world):
    console = ConsoleClient(client, "")
    missing = console.get("/billing/settings/")
    assert missing.status_code == 401
    body = missing.get_json()
    assert body["data"] is None and body["errors"][0]["code"] == 401
    assert body["meta"]["correlationId"] == missing.headers["X-Correlation-Id"]
    tenant_token = ConsoleClient(client, world.a.token_secret).get("/billing/settings/")
    assert tenant_token.status_code == 401


def test_a_read_only_admin_token_cannot_change(client, world):
    console = ConsoleClient(client, admin_token(scopes=("admin:read",)))
    assert console.get("/billing/settings/").status_code == 200
    response = console.patch(
        _settings_url(world.a.tenant), json=[{"op": "replace", "path": "/billingDay", "value": 5}]
    )
    assert response.status_code == 403


def test_server_errors_are_520_with_a_correlation_id(console, world, monkeypatch, caplog):
    import portal.api.console.views as views

    def boom(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(views, "_invoice_resource", boom)
    response = console.get(f"/billing/invoices/{world.a.invoice.public_id}")
    assert response.status_code == 520
    correlation = response.get_json()["meta"]["correlationId"]
    assert correlation in response.get_json()["errors"][0]["message"]
    assert correlation in caplog.text


def test_client_version_is_echoed(console):
    response = console.get("/billing/settings/", headers={"X-Client-Version": "3.6.1"})
    assert response.headers["X-Client-Version"] == "3.6.1"


# --- company billing settings --------------------------------------------------------------


def test_settings_collection_with_defaults_filter_sort_select_and_paging(console, world, session):
    session.add(CompanyBillingSettings(tenant_id=world.b.tenant.id, billing_day=15))
    session.commit()
    everything = console.get("/billing/settings/").get_json()
    assert everything["meta"]["pagingInfo"] == {"total": 2, "count": 2, "offset": 0}
    by_name = {row["companyName"]: row for row in everything["data"]}
    assert by_name[world.a.tenant.name]["billingDay"] == 1  # never configured: defaults
    assert by_name[world.a.tenant.name]["discountPercent"] == "0"
    assert by_name[world.b.tenant.name]["billingDay"] == 15

    filtered = console.get(
        "/billing/settings/",
        query={"filter": [{"property": "/billingDay", "operation": "greaterThan", "value": 10}]},
    ).get_json()
    assert [r["companyName"] for r in filtered["data"]] == [world.b.tenant.name]
    assert filtered["meta"]["pagingInfo"]["total"] == 1

    ordered = console.get(
        "/billing/settings/",
        query={
            "sort": [{"property": "/companyName", "direction": "descending"}],
            "select": [{"propertyPath": "/companyName"}],
            "limit": 1,
            "offset": 1,
        },
    ).get_json()
    names = sorted([world.a.tenant.name, world.b.tenant.name], reverse=True)
    assert ordered["data"] == [{"companyName": names[1]}]
    assert ordered["meta"]["pagingInfo"] == {"total": 2, "count": 1, "offset": 1}


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"limit": "x"},
        {"filter": "not json"},
        {"filter": [{"property": "/nope", "operation": "equals", "value": 1}]},
        {"filter": [{"property": "/billingDay", "operation": "like", "value": 1}]},
        {"filter": [{"property": "/billingDay", "operation": "equals", "value": "x"}]},
        {"filter": [{"operation": "and", "items": []}]},
        {"sort": [{"property": "/billingDay", "direction": "up"}]},
        {"select": [{"propertyPath": "/nope"}]},
        {"select": [{"propertyPath": "billingDay"}]},
    ],
)
def test_bad_collection_queries_are_400(console, world, query):
    response = console.get("/billing/settings/", query=query)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["errors"][0]["location"].startswith("query")


def test_one_company_settings_and_select(console, world):
    data = console.get(
        _settings_url(world.a.tenant), query={"select": [{"propertyPath": "/autoCollect"}]}
    ).get_json()["data"]
    assert data == {"autoCollect": True}
    assert console.get(f"/{uuid.uuid4()}/billing/settings/").status_code == 404
    assert console.get("/not-a-uuid/billing/settings/").status_code == 404


def test_patch_applies_all_operations_and_audits(console, world, session):
    url = _settings_url(world.a.tenant)
    response = console.patch(
        url,
        json=[
            {"op": "test", "path": "/billingDay", "value": 1},
            {"op": "replace", "path": "/billingDay", "value": 15},
            {"op": "add", "path": "/notes", "value": "Key account"},
            {"op": "copy", "from": "/billingDay", "path": "/paymentTermsDays"},
            {"op": "replace", "path": "/discountPercent", "value": "12.5"},
            {"op": "replace", "path": "/autoSend", "value": True},
        ],
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["billingDay"] == 15 and data["paymentTermsDays"] == 15
    assert data["notes"] == "Key account" and data["discountPercent"] == "12.5"
    assert data["autoSend"] is True
    assert _audits(session, "settings.update") == 1
    entry = session.scalars(sa.select(AuditLogEntry)).one()
    assert entry.actor_token_id is not None and entry.tenant_id == world.a.tenant.id

    moved = console.patch(url, json=[{"op": "move", "from": "/notes", "path": "/notes"}])
    assert moved.status_code == 200
    removed = console.patch(url, json=[{"op": "remove", "path": "/paymentTermsDays"}])
    assert removed.get_json()["data"]["paymentTermsDays"] is None


@pytest.mark.parametrize(
    ("patch", "status"),
    [
        (
            [
                {"op": "test", "path": "/billingDay", "value": 7},
                {"op": "replace", "path": "/billingDay", "value": 9},
            ],
            409,
        ),  # noqa: E501
        ([{"op": "replace", "path": "/nope", "value": 1}], 400),
        ([{"op": "add", "path": "/nope", "value": 1}], 400),
        ([{"op": "replace", "path": "/companyUid", "value": str(uuid.uuid4())}], 400),
        ([{"op": "remove", "path": "/billingDay"}], 400),
        ([{"op": "replace", "path": "/billingDay", "value": 40}], 400),
        ([{"op": "replace", "path": "/discountPercent", "value": "abc"}], 400),
        ([{"op": "replace", "path": "/billingDay"}], 400),
        ([{"op": "jump", "path": "/billingDay", "value": 2}], 400),
        ([{"op": "copy", "from": "/missing", "path": "/notes"}], 400),
        ({"op": "replace", "path": "/billingDay", "value": 2}, 400),
        ([{"op": "replace", "path": "billingDay", "value": 2}], 400),
    ],
)
def test_a_failing_patch_changes_nothing(console, world, session, patch, status):
    url = _settings_url(world.a.tenant)
    before = console.get(url).get_json()["data"]
    response = console.patch(url, json=patch)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["errors"]
    assert console.get(url).get_json()["data"] == before
    assert session.scalar(sa.select(sa.func.count()).select_from(CompanyBillingSettings)) == 0


# --- invoices ------------------------------------------------------------------------------


def _spread(world, session) -> list[Invoice]:
    """Four more invoices of A across 2026, one paid, and one of B."""
    invoices = []
    for month in (2, 4, 6, 8):
        start = dt.date(2026, month, 1)
        end = dt.date(2026, month + 1, 1) - dt.timedelta(days=1)
        invoices.append(make_invoice(world.a.tenant, period_start=start, period_end=end))
    from portal.invoices.lifecycle import mark_paid

    mark_paid(session, invoices[0])
    session.commit()
    return invoices


def test_invoice_collections_range_filter_sort_select(console, world, session):
    spread = _spread(world, session)
    everything = console.get("/billing/invoices/", query=RANGE).get_json()
    assert everything["meta"]["pagingInfo"]["total"] == 6  # A: 1 + 4, B: 1
    paid = console.get(
        "/billing/invoices/",
        query={
            **RANGE,
            "filter": [{"property": "/status", "operation": "equals", "value": "Paid"}],
        },
    ).get_json()["data"]
    assert [row["instanceUid"] for row in paid] == [str(spread[0].public_id)]
    assert paid[0]["paidState"] == "Paid"

    mine = console.get(f"/{world.b.tenant.public_id}/billing/invoices", query=RANGE).get_json()
    assert [row["companyUid"] for row in mine["data"]] == [str(world.b.tenant.public_id)]

    nested = console.get(
        "/billing/invoices/",
        query={
            **RANGE,
            "sort": [{"property": "/issueDate", "direction": "ascending"}],
            "select": [{"propertyPath": "/number"}, {"propertyPath": "/totals/amountDueMinor"}],
            "filter": [
                {
                    "operation": "or",
                    "items": [
                        {
                            "property": "/companyUid",
                            "operation": "equals",
                            "value": str(world.b.tenant.public_id),
                        },  # noqa: E501
                        {"property": "/number", "operation": "in", "value": [spread[1].number]},
                    ],
                }
            ],
        },
    ).get_json()["data"]
    assert all(set(row) == {"number", "totals"} for row in nested)
    assert all(set(row["totals"]) == {"amountDueMinor"} for row in nested)
    assert len(nested) == 2


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"fromDate": "2026-01-01"},
        {"fromDate": "2026-01-01", "toDate": "2027-01-02"},
        {"fromDate": "2026-05-01", "toDate": "2026-04-01"},
        {"fromDate": "yesterday", "toDate": "2026-04-01"},
        {**RANGE, "limit": 501},
    ],
)
def test_invoice_range_is_required_and_at_most_a_year(console, world, query):
    response = console.get("/billing/invoices/", query=query)
    assert response.status_code == 400, response.get_json()


def test_exactly_one_year_is_accepted(console, world):
    response = console.get(
        "/billing/invoices/", query={"fromDate": "2026-01-01", "toDate": "2027-01-01"}
    )
    assert response.status_code == 200


def test_get_delete_and_pdf_link(console, client, world, session):
    invoice = world.a.invoice
    data = console.get(f"/billing/invoices/{invoice.public_id}").get_json()["data"]
    assert data["number"] == invoice.number
    assert data["totals"]["amountDueMinor"] == invoice.amount_due_minor

    refused = console.delete(f"/billing/invoices/{invoice.public_id}")
    assert refused.status_code == 409
    assert refused.get_json()["errors"][0]["type"] == "not_a_draft"
    draft = make_invoice(
        world.a.tenant,
        finalize=False,
        period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 11, 30),
    )
    session.commit()
    deleted = console.delete(f"/billing/invoices/{draft.public_id}")
    assert deleted.status_code == 200 and deleted.get_json()["data"]["deleted"] is True
    assert console.get(f"/billing/invoices/{draft.public_id}").status_code == 404

    link = console.get(f"/billing/invoices/{invoice.public_id}/pdf").get_json()
    assert isinstance(link, str) and "/pdf/download?t=" in link
    pdf = client.get(link.replace("http://localhost", ""))  # no bearer token needed
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    tampered = client.get(link.replace("http://localhost", "")[:-3] + "abc")
    assert tampered.status_code == 404


def test_change_paid_state_records_ledger_and_audit(console, world, session):
    invoice = world.a.invoice
    url = f"/billing/invoices/{invoice.public_id}/changePaidState"
    movements = session.scalar(sa.select(sa.func.count()).select_from(LedgerMovement))
    paid = console.post(url, query={"status": "Paid"})
    assert paid.status_code == 200, paid.get_json()
    assert paid.get_json()["data"]["status"] == "Paid" and paid.get_json()["errors"] == []
    assert session.scalar(sa.select(sa.func.count()).select_from(LedgerMovement)) > movements
    assert _audits(session, "invoice.mark_paid") == 1
    assert console.post(url, query={"status": "Paid"}).status_code == 409
    assert console.post(url, query={"status": "Maybe"}).status_code == 400
    unpaid = console.post(url, query={"status": "Unpaid"})
    assert unpaid.get_json()["data"]["paidState"] == "Unpaid"
    assert _audits(session, "invoice.mark_unpaid") == 1


def test_send(console, world, session, mailbox):
    response = console.post(f"/billing/invoices/{world.a.invoice.public_id}/send")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["status"] == "Sent"
    assert mailbox.wait_for(1)


def test_every_operation_answers_404_for_unknown_ids(console):
    unknown = uuid.uuid4()
    for method, path in [
        ("GET", f"/billing/invoices/{unknown}"),
        ("DELETE", f"/billing/invoices/{unknown}"),
        ("GET", f"/billing/invoices/{unknown}/pdf"),
        ("POST", f"/billing/invoices/{unknown}/changePaidState?status=Paid"),
        ("POST", f"/billing/invoices/{unknown}/send"),
        ("POST", f"/{unknown}/billing/generateInvoices"),
        (
            "POST",
            f"/{unknown}/billing/generateQuotaUsageReport?fromDate=2026-01-01&toDate=2026-02-01",
        ),  # noqa: E501
        ("GET", f"/{unknown}/billing/invoices?fromDate=2026-01-01&toDate=2026-02-01"),
        ("GET", f"/billing/jobs/{unknown}"),
    ]:
        response = console.call(method, path)
        assert response.status_code == 404, (method, path, response.get_json())


# --- jobs ----------------------------------------------------------------------------------


def test_generate_invoices_and_quota_report_run_as_jobs(console, world, session):
    from tests.factories.catalog import subscribe_this_month

    subscribe_this_month(session, world.a.tenant)
    month = dt.date.today().strftime("%Y-%m")
    generated = console.post(
        f"/{world.a.tenant.public_id}/billing/generateInvoices", query={"period": month}
    )
    assert generated.status_code in (200, 202), generated.get_json()
    job = generated.get_json()["data"]
    state = console.get(f"/billing/jobs/{job['jobUid']}").get_json()["data"]
    assert state["status"] == "succeeded"  # tests run the queue immediately
    assert state["progress"]["done"] == state["progress"]["total"] == 1

    today = dt.date.today()
    report = console.post(
        f"/{world.a.tenant.public_id}/billing/generateQuotaUsageReport",
        query={"fromDate": today.replace(day=1).isoformat(), "toDate": today.isoformat()},
    )
    assert report.status_code in (200, 202)
    report_job = console.get(f"/billing/jobs/{report.get_json()['data']['jobUid']}").get_json()
    assert report_job["data"]["status"] == "succeeded"
    csv = console.get(f"/billing/jobs/{report.get_json()['data']['jobUid']}/report.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "api_calls" in csv.get_data(as_text=True)

    bad = console.post(
        f"/{world.a.tenant.public_id}/billing/generateInvoices", query={"period": "2026-13"}
    )
    assert bad.status_code == 400


# --- idempotency ---------------------------------------------------------------------------


def test_a_repeated_request_id_replays_and_does_nothing_again(console, world, session, request_id):
    url = f"/billing/invoices/{world.a.invoice.public_id}/changePaidState"
    headers = {"X-Request-id": request_id}
    first = console.post(url, query={"status": "Paid"}, headers=headers)
    second = console.post(url, query={"status": "Paid"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.headers["X-Idempotent-Replay"] == "true"
    assert second.get_json()["data"] == first.get_json()["data"]
    assert _audits(session, "invoice.mark_paid") == 1

    other = console.post(url, query={"status": "Unpaid"}, headers=headers)
    assert other.status_code == 409
    assert other.get_json()["errors"][0]["type"] == "request_id_reused"
    bad = console.post(url, query={"status": "Paid"}, headers={"X-Request-id": "not-a-uuid"})
    assert bad.status_code == 400


def test_ids_are_per_token_and_errors_are_replayed_too(client, world, session, request_id):
    first_client = ConsoleClient(client, admin_token())
    url = f"/billing/invoices/{world.a.invoice.public_id}"
    headers = {"X-Request-id": request_id}
    finalized = first_client.delete(url, headers=headers)
    assert finalized.status_code == 409
    assert first_client.delete(url, headers=headers).headers["X-Idempotent-Replay"] == "true"
    other_token = ConsoleClient(client, admin_token())
    assert "X-Idempotent-Replay" not in other_token.delete(url, headers=headers).headers


@pytest.mark.postgres_only
def test_concurrent_duplicates_have_one_effect(app, world, session, request_id):
    token = admin_token()
    url = (
        f"/api/v1/organizations/companies/billing/invoices/{world.a.invoice.public_id}"
        "/changePaidState?status=Paid"
    )
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def call() -> None:
        with app.test_client() as own:
            barrier.wait()
            response = own.post(
                url, headers={"Authorization": f"Bearer {token}", "X-Request-id": request_id}
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    session.expire_all()
    assert _audits(session, "invoice.mark_paid") == 1
    assert session.get(Invoice, world.a.invoice.id).status == InvoiceStatus.PAID


def test_tokens_of_the_wrong_kind_cannot_create_jobs(client, world, session):
    _, tenant_secret = create_api_token(
        session,
        kind=TokenKind.TENANT,
        tenant=world.a.tenant,
        name="t",
        scopes=["admin:read", "admin:write"],
    )
    session.commit()
    response = ConsoleClient(client, tenant_secret).post(
        f"/{world.a.tenant.public_id}/billing/generateInvoices"
    )
    assert response.status_code == 401
    assert session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0
