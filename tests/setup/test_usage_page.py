"""The admin page that records usage: a record per form, a resent form counted once, bad
input shown at its field with nothing written, numbers read in the viewer's language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.catalog.subscriptions import NewItem, create_subscription
from portal.extensions import db
from portal.invoices.run import run_invoices
from portal.usage.models import UsageRecord
from tests.setup.subs_support import ACTOR, Shop


@pytest.fixture
def admin(client, auth, world):
    auth.login(world.admin.email)
    return client


@pytest.fixture
def company(world):
    shop = Shop(world.a.tenant.seller)
    tenant = shop.company()
    create_subscription(
        db.session,
        tenant,
        ACTOR,
        items=[NewItem(shop.api)],
        start=dt.date(2026, 10, 1),
        today=dt.date(2026, 10, 1),
    )
    db.session.commit()
    return tenant


def _records(tenant) -> list[UsageRecord]:
    query = sa.select(UsageRecord).where(UsageRecord.tenant_id == tenant.id)
    return list(db.session.scalars(query.order_by(UsageRecord.id)))


def _form(**changes) -> dict[str, str]:
    form = {
        "metric": "api_calls",
        "quantity": "3000",
        "occurred_at": "2026-10-03T09:30",
        "key": "admin-test-1",
    }
    return {**form, **changes}


def test_the_form_suggests_the_companys_metric(admin, company):
    page = admin.get(f"/admin/companies/{company.public_id}/usage").get_data(as_text=True)
    assert '<option value="api_calls">' in page
    assert 'name="key" value="admin-' in page
    assert "No usage recorded." in page
    company_page = admin.get(f"/admin/companies/{company.public_id}").get_data(as_text=True)
    assert f"/admin/companies/{company.public_id}/usage" in company_page


def test_a_form_records_one_event_and_a_resent_form_counts_once(admin, company):
    url = f"/admin/companies/{company.public_id}/usage"
    answer = admin.post(url, data=_form(quantity="1,500.25"))
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(url)
    [record] = _records(company)
    assert record.quantity == Decimal("1500.25")
    assert record.occurred_at == dt.datetime(2026, 10, 3, 9, 30, tzinfo=dt.UTC)
    assert record.metric == "api_calls"
    again = admin.post(url, data=_form(quantity="1,500.25"), follow_redirects=True)
    assert "This usage was recorded already; it counts once." in again.get_data(as_text=True)
    assert len(_records(company)) == 1
    listed = admin.get(url).get_data(as_text=True)
    assert "2026-10-03 09:30" in listed and "1,500.25" in listed


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"metric": ""}, "metric", "Enter the metric."),
        ({"metric": "api calls"}, "metric", "Enter a metric of 1 to 60 letters"),
        ({"metric": "m" * 61}, "metric", "Enter a metric of 1 to 60 letters"),
        ({"quantity": ""}, "quantity", "Enter a quantity."),
        ({"quantity": "abc"}, "quantity", "Enter a number such as 1,500.5."),
        ({"quantity": "NaN"}, "quantity", "Enter a number such as 1,500.5."),
        ({"quantity": "1e5"}, "quantity", "Enter a number such as 1,500.5."),
        ({"quantity": "1,5"}, "quantity", "Enter a number such as 1,500.5."),
        ({"quantity": "-5"}, "quantity", "Enter a quantity from 0 to 999,999,999,999"),
        ({"quantity": "0.0000001"}, "quantity", "at most six decimal places"),
        ({"quantity": "1000000000000"}, "quantity", "Enter a quantity from 0 to"),
        ({"occurred_at": ""}, "occurred_at", "Enter a date and time."),
        ({"occurred_at": "yesterday"}, "occurred_at", "as YYYY-MM-DD HH:MM"),
        ({"occurred_at": "2026-13-01T00:00"}, "occurred_at", "as YYYY-MM-DD HH:MM"),
        ({"occurred_at": "2026-10-03T09:30+02:00"}, "occurred_at", "as YYYY-MM-DD HH:MM"),
        ({"key": ""}, "form", "The form has expired."),
        ({"key": "with space"}, "form", "The form has expired."),
    ],
)
def test_bad_input_is_shown_at_its_field_and_writes_nothing(
    admin, company, changes, field, message
):
    answer = admin.post(f"/admin/companies/{company.public_id}/usage", data=_form(**changes))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert message in body
    if field != "form":
        assert f'id="{field}-error"' in body
        assert 'aria-invalid="true"' in body
    assert _records(company) == []


def test_a_key_resent_with_other_values_is_refused(admin, company):
    url = f"/admin/companies/{company.public_id}/usage"
    assert admin.post(url, data=_form()).status_code == 303
    answer = admin.post(url, data=_form(quantity="3001"))
    assert answer.status_code == 200
    assert "This form was already sent with other values." in answer.get_data(as_text=True)
    assert [r.quantity for r in _records(company)] == [Decimal(3000)]


def test_usage_in_an_invoiced_period_names_the_invoice(admin, company):
    url = f"/admin/companies/{company.public_id}/usage"
    assert admin.post(url, data=_form()).status_code == 303
    run_invoices(db.session, "2026-10")
    answer = admin.post(url, data=_form(key="admin-test-2", occurred_at="2026-10-20T08:00"))
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'id="occurred_at-error"' in body and "already bills this period" in body
    assert len(_records(company)) == 1
    following = admin.post(url, data=_form(key="admin-test-3", occurred_at="2026-11-02T08:00"))
    assert following.status_code == 303
    assert len(_records(company)) == 2


def test_german_numbers_are_read_as_german(admin, company, world):
    world.admin.locale = "de"
    db.session.commit()
    url = f"/admin/companies/{company.public_id}/usage"
    refused = admin.post(url, data=_form(quantity="1.5")).get_data(as_text=True)
    assert "Geben Sie eine Zahl wie 1.500,5 ein." in refused
    assert admin.post(url, data=_form(quantity="1.500")).status_code == 303
    assert [r.quantity for r in _records(company)] == [Decimal(1500)]


def test_an_archived_company_gets_no_usage(admin, company):
    company.archived_at = dt.datetime(2026, 10, 2, tzinfo=dt.UTC)
    db.session.commit()
    answer = admin.post(f"/admin/companies/{company.public_id}/usage", data=_form())
    assert answer.status_code == 200
    assert "The company is archived" in answer.get_data(as_text=True)
    assert _records(company) == []


def test_only_platform_admins_see_the_page(client, auth, world, company):
    auth.login(world.a.owner.email)
    url = f"/admin/companies/{company.public_id}/usage"
    assert client.get(url).status_code in (403, 404)
    assert client.post(url, data=_form()).status_code in (403, 404)
    assert _records(company) == []
