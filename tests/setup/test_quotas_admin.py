"""Quotas from the admin console and the console API: set, change, remove, bad input (a
clear 4xx or field error, nothing written), archived companies, other companies."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.ops.models import AuditLogEntry
from portal.tenancy.companies import archive_company
from portal.usage.models import Quota
from tests.api_console.conftest import ConsoleClient, admin_token
from tests.setup.subs_support import ACTOR, D


def _quotas(tenant) -> list[tuple[str, D, bool]]:
    db.session.expire_all()
    return [
        (q.metric, q.limit, q.is_hard)
        for q in db.session.scalars(
            sa.select(Quota).where(Quota.tenant_id == tenant.id).order_by(Quota.metric)
        )
    ]


def _audits(action: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(AuditLogEntry.action == action))


@pytest.fixture
def console(client, world) -> ConsoleClient:
    return ConsoleClient(client, admin_token())


# -- API --------------------------------------------------------------------------------------


def test_put_get_change_and_delete_a_quota(console, world):
    tenant = world.a.tenant
    base = f"/{tenant.public_id}/billing/quotas"
    before = _quotas(tenant)
    made = console.call("PUT", f"{base}/api_calls", json={"limit": "150000", "isHard": True})
    assert made.status_code == 200, made.get_json()
    assert made.get_json()["data"] == {
        "companyUid": str(tenant.public_id),
        "metric": "api_calls",
        "limit": "150000",
        "isHard": True,
    }
    changed = console.call("PUT", f"{base}/api_calls", json={"limit": "2500.5"})
    assert changed.get_json()["data"]["limit"] == "2500.5"
    assert changed.get_json()["data"]["isHard"] is False
    same = console.call("PUT", f"{base}/api_calls", json={"limit": "2500.50"})
    assert same.status_code == 200
    assert (_audits("quota.create"), _audits("quota.update")) == (1, 1)  # same values: none
    listed = console.get(base).get_json()["data"]
    assert {"metric": "api_calls", "limit": "2500.5", "isHard": False}.items() <= listed[
        [q["metric"] for q in listed].index("api_calls")
    ].items()
    gone = console.delete(f"{base}/api_calls")
    assert gone.status_code == 200 and gone.get_json()["data"]["metric"] == "api_calls"
    assert console.delete(f"{base}/api_calls").status_code == 404
    assert _quotas(tenant) == [q for q in before if q[0] != "api_calls"]
    assert _audits("quota.remove") == 1


@pytest.mark.parametrize(
    ("metric", "body", "location"),
    [
        ("api_calls", {"limit": "-1"}, "body/limit"),
        ("api_calls", {"limit": "1.1234567"}, "body/limit"),
        ("api_calls", {"limit": 1.5}, "body/limit"),
        ("api_calls", {"limit": "10", "isHard": "yes"}, "body/isHard"),
        ("api_calls", {"limit": "10", "extra": 1}, "body/extra"),
        ("api_calls", {}, "body/limit"),
        ("bad metric!", {"limit": "10"}, "path/metric"),
    ],
)
def test_bad_quota_input_is_a_400_and_writes_nothing(console, world, metric, body, location):
    tenant = world.a.tenant
    before = _quotas(tenant)
    answer = console.call("PUT", f"/{tenant.public_id}/billing/quotas/{metric}", json=body)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["errors"][0]["location"].startswith(location)
    assert _quotas(tenant) == before


def test_quotas_of_unknown_or_archived_companies(console, world):
    assert console.get("/not-a-uid/billing/quotas").status_code == 404
    tenant = world.b.tenant
    archive_company(db.session, tenant, ACTOR)
    db.session.commit()
    before = _quotas(tenant)
    answer = console.call(
        "PUT", f"/{tenant.public_id}/billing/quotas/api_calls", json={"limit": "5"}
    )
    assert answer.status_code == 409
    assert answer.get_json()["errors"][0]["type"] == "archived"
    assert _quotas(tenant) == before


# -- pages ------------------------------------------------------------------------------------


@pytest.fixture
def admin(client, auth, world):
    auth.login(world.admin.email)
    return client


def test_quota_page_sets_changes_and_removes_with_confirmation(admin, world):
    tenant = world.a.tenant
    url = f"/admin/companies/{tenant.public_id}/quotas"
    company = admin.get(f"/admin/companies/{tenant.public_id}").get_data(as_text=True)
    assert url in company
    assert "Set a quota" in admin.get(url).get_data(as_text=True)

    bad = admin.post(url, data={"metric": "storage gb", "limit": "1,5"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 200
    assert "Enter a number such as 1,500.5." in text
    assert not any(q[0] == "storage gb" for q in _quotas(tenant))

    made = admin.post(url, data={"metric": "storage_gb", "limit": "1,500", "is_hard": "on"})
    assert made.status_code == 303
    assert ("storage_gb", D(1500), True) in _quotas(tenant)
    page = admin.get(url).get_data(as_text=True)
    assert "storage_gb" in page and "1,500" in page and "hard limit" in page

    form = admin.get(url, query_string={"metric": "storage_gb"}).get_data(as_text=True)
    assert 'value="1,500"' in form
    admin.post(url, data={"metric": "storage_gb", "limit": "2000"})
    assert ("storage_gb", D(2000), False) in _quotas(tenant)

    confirm = admin.get(f"{url}/storage_gb/remove")
    assert "Yes, remove it" in confirm.get_data(as_text=True)
    assert admin.post(f"{url}/storage_gb/remove").status_code == 303
    assert not any(q[0] == "storage_gb" for q in _quotas(tenant))
    assert admin.get(f"{url}/storage_gb/remove").status_code == 404


def test_quota_form_reads_german_numbers(admin, world):
    tenant = world.a.tenant
    world.admin.locale = "de"
    db.session.commit()
    url = f"/admin/companies/{tenant.public_id}/quotas"
    admin.post(url, data={"metric": "seats", "limit": "1.500"})
    assert ("seats", D(1500), False) in _quotas(tenant)
    page = admin.get(url).get_data(as_text=True)
    assert "Kontingent festlegen" in page and "1.500" in page
    admin.post(url, data={"metric": "seats", "limit": "2.500,25"})
    assert ("seats", D("2500.25"), False) in _quotas(tenant)
    form = admin.get(url, query_string={"metric": "seats"}).get_data(as_text=True)
    assert 'value="2.500,25"' in form
    bad = admin.post(url, data={"metric": "seats", "limit": "-3"})
    assert "höchstens sechs Dezimalstellen" in bad.get_data(as_text=True)


def test_quota_pages_of_archived_and_unknown_companies(admin, world):
    tenant = world.b.tenant
    archive_company(db.session, tenant, ACTOR)
    db.session.commit()
    url = f"/admin/companies/{tenant.public_id}/quotas"
    page = admin.get(url).get_data(as_text=True)
    assert "Set a quota" not in page
    before = _quotas(tenant)
    refused = admin.post(url, data={"metric": "x", "limit": "1"})
    assert "archived" in refused.get_data(as_text=True)
    assert _quotas(tenant) == before
    assert admin.get("/admin/companies/nope/quotas").status_code == 404
