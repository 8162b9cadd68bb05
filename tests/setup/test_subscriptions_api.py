"""Console API of subscriptions and one-off charges: contract and bad inputs (4xx, nothing
written)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.models import (
    OneOffCharge,
    PriceModel,
    Subscription,
    SubscriptionChange,
    SubscriptionStatus,
)
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.ops.models import AuditLogEntry
from tests.api_console.conftest import ConsoleClient, admin_token
from tests.setup.subs_support import D, Shop

TODAY = dt.date.today()
MONTH_START = TODAY.replace(day=1)


@pytest.fixture
def console(client, world) -> ConsoleClient:
    return ConsoleClient(client, admin_token())


@pytest.fixture
def shop(world) -> Shop:
    shop = Shop(world.a.tenant.seller)
    db.session.commit()
    return shop


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _create(console, tenant, items, **extra):
    return console.post(
        f"/{tenant.public_id}/billing/subscriptions",
        json={"items": items, "startDate": MONTH_START.isoformat(), **extra},
    )


def _subscribed(console, world, shop) -> dict:
    answer = _create(
        console,
        world.a.tenant,
        [
            {"priceUid": str(shop.seat.public_id), "quantity": "3"},
            {"priceUid": str(shop.api.public_id)},
        ],
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["data"]


def test_create_read_list(console, world, shop):
    data = _subscribed(console, world, shop)
    assert data["status"] == "Active" and data["currency"] == "EUR"
    assert data["billingAnchor"] == MONTH_START.isoformat()
    assert [(i["priceName"], i["quantity"]) for i in data["items"]] == [
        ("Seat", "3"),
        ("Api", None),
    ]
    tenant = world.a.tenant
    one = console.get(f"/{tenant.public_id}/billing/subscriptions/{data['instanceUid']}")
    assert one.status_code == 200 and one.get_json()["data"]["instanceUid"] == data["instanceUid"]
    listing = console.get(f"/{tenant.public_id}/billing/subscriptions").get_json()
    assert [s["instanceUid"] for s in listing["data"]] == [data["instanceUid"]]
    assert listing["meta"]["pagingInfo"]["total"] == 1
    other = world.b.tenant
    assert (
        console.get(f"/{other.public_id}/billing/subscriptions/{data['instanceUid']}").status_code
        == 404
    )
    assert db.session.scalars(sa.select(AuditLogEntry.action)).all() == ["subscription.create"]


@pytest.mark.parametrize(
    ("items", "extra", "status", "location", "type_"),
    [
        (
            [{"priceUid": "00000000-0000-4000-8000-000000000000", "quantity": "1"}],
            {},
            400,
            "body/items/0/priceUid",
            "unknown_price",
        ),
        (
            [{"priceUid": "not-a-uuid", "quantity": "1"}],
            {},
            400,
            "body/items/0/priceUid",
            "unknown_price",
        ),
        ("usd", {}, 400, "body/items/0/priceUid", "currency_mismatch"),
        ("seat:0", {}, 400, "body/items/0/quantity", "quantity_not_positive"),
        ("seat:-1", {}, 400, "body/items/0/quantity", "quantity_not_positive"),
        ("seat:1.5float", {}, 400, None, None),
        (
            "seat:1",
            {"trialEnd": (MONTH_START - dt.timedelta(days=1)).isoformat()},
            400,
            "body/trialEnd",
            "end_before_start",
        ),
        (
            "seat:1",
            {"billingAnchor": (MONTH_START - dt.timedelta(days=3)).isoformat()},
            400,
            "body/billingAnchor",
            "end_before_start",
        ),
        ("seat:1", {"startDate": "2026-02-30"}, 400, None, None),
        ("seat:1", {"unknown": 1}, 400, None, None),
        ([], {}, 400, None, None),
    ],
)
def test_bad_subscriptions_are_refused_and_nothing_is_written(
    console, world, shop, items, extra, status, location, type_
):
    if items == "usd":
        usd = shop.price("usd", PriceModel.FLAT, currency="USD", unit_amount=D(1))
        db.session.commit()
        items = [{"priceUid": str(usd.public_id), "quantity": "1"}]
    elif isinstance(items, str):
        quantity = items.split(":")[1]
        value = 1.5 if quantity == "1.5float" else quantity
        items = [{"priceUid": str(shop.seat.public_id), "quantity": value}]
    body = {"items": items, "startDate": MONTH_START.isoformat(), **extra}
    answer = console.post(f"/{world.a.tenant.public_id}/billing/subscriptions", json=body)
    assert answer.status_code == status, answer.get_json()
    payload = answer.get_json()
    assert payload["data"] is None and payload["errors"]
    if location:
        assert (payload["errors"][0]["location"], payload["errors"][0]["type"]) == (location, type_)
    assert _count(Subscription) == 0 and _count(AuditLogEntry) == 0


def test_unknown_company_is_404(console, shop):
    answer = console.post(
        "/00000000-0000-4000-8000-000000000000/billing/subscriptions",
        json={"items": [], "startDate": "2026-10-01"},
    )
    assert answer.status_code in (400, 404)
    assert console.get("/nope/billing/subscriptions").status_code == 404


def test_patch_changes_an_item_and_preview_matches(console, world, shop):
    data = _subscribed(console, world, shop)
    base = f"/{world.a.tenant.public_id}/billing/subscriptions/{data['instanceUid']}"
    change = {
        "priceUid": str(shop.seat.public_id),
        "quantity": "5",
        "effectiveDate": TODAY.isoformat(),
    }
    invoices = _count(Invoice)
    previewed = console.post(f"{base}/preview", json={"change": change})
    assert previewed.status_code == 200, previewed.get_json()
    lines = previewed.get_json()["data"]["lines"]
    assert lines[0]["description"] == "Seat" and lines[0]["quantity"] == "5"
    assert _count(SubscriptionChange) == 0 and _count(Invoice) == invoices
    patched = console.patch(base, json={"change": change})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["data"]["items"][0]["quantity"] == "5"
    assert _count(SubscriptionChange) == 1
    current = console.post(f"{base}/preview", json={}).get_json()["data"]
    assert current["totals"] == previewed.get_json()["data"]["totals"]


@pytest.mark.parametrize(
    ("change", "location", "type_"),
    [
        (
            {"effectiveDate": (MONTH_START - dt.timedelta(days=1)).isoformat()},
            "body/change/effectiveDate",
            "outside_current_period",
        ),
        ({"quantity": "0"}, "body/change/quantity", "quantity_not_positive"),
        ({"quantity": "abc"}, "body/change/quantity", "invalid_quantity"),
        (
            {"newPriceUid": "00000000-0000-4000-8000-000000000000"},
            "body/change/newPriceUid",
            "unknown_price",
        ),
        (
            {"priceUid": "00000000-0000-4000-8000-000000000000"},
            "body/change/priceUid",
            "unknown_price",
        ),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_written(
    console, world, shop, change, location, type_
):
    data = _subscribed(console, world, shop)
    base = f"/{world.a.tenant.public_id}/billing/subscriptions/{data['instanceUid']}"
    body = {
        "priceUid": str(shop.seat.public_id),
        "quantity": "5",
        "effectiveDate": TODAY.isoformat(),
        **change,
    }
    for path, method in ((base, console.patch), (f"{base}/preview", console.post)):
        answer = method(path, json={"change": body})
        assert answer.status_code == 400, answer.get_json()
        error = answer.get_json()["errors"][0]
        assert (error["location"], error["type"]) == (location, type_)
    assert _count(SubscriptionChange) == 0


def test_patch_needs_change_or_resume(console, world, shop):
    data = _subscribed(console, world, shop)
    base = f"/{world.a.tenant.public_id}/billing/subscriptions/{data['instanceUid']}"
    assert console.patch(base, json={}).status_code == 400
    answer = console.patch(base, json={"cancelAtPeriodEnd": False})
    assert answer.status_code == 409
    assert answer.get_json()["errors"][0]["type"] == "not_pending_cancellation"


def test_cancel_at_period_end_resume_then_cancel_now(console, world, shop):
    data = _subscribed(console, world, shop)
    base = f"/{world.a.tenant.public_id}/billing/subscriptions/{data['instanceUid']}"
    assert console.delete(base, query={"at": "periodEnd"}).status_code == 400  # no reason
    answer = console.delete(base, query={"at": "periodEnd", "reason": "budget"})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()["data"]
    assert body["subscription"]["cancelAtPeriodEnd"] is True and body["finalInvoiceUid"] is None
    resumed = console.patch(base, json={"cancelAtPeriodEnd": False})
    assert resumed.status_code == 200 and resumed.get_json()["data"]["cancelAtPeriodEnd"] is False
    answer = console.delete(
        base, query={"at": "now", "reason": "closed", "effectiveDate": TODAY.isoformat()}
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()["data"]
    assert body["subscription"]["status"] == "Canceled"
    if TODAY > MONTH_START:  # some of the period was used: its final invoice
        invoice = db.session.scalars(
            sa.select(Invoice).where(Invoice.period_start == MONTH_START)
        ).one()
        assert body["finalInvoiceUid"] == str(invoice.public_id)
    again = console.delete(base, query={"at": "now", "reason": "x"})
    assert again.status_code == 409
    assert db.session.scalars(sa.select(Subscription)).one().status == SubscriptionStatus.CANCELED


def test_charges(console, world, shop):
    tenant = world.a.tenant
    url = f"/{tenant.public_id}/billing/charges"
    answer = console.post(
        url, json={"description": "Setup", "quantity": "2", "unitPrice": "149.90"}
    )
    assert answer.status_code == 201, answer.get_json()
    data = answer.get_json()["data"]
    assert (data["timing"], data["invoiceUid"], data["unitPrice"]) == ("nextInvoice", None, "149.9")
    answer = console.post(
        url,
        json={
            "description": "Box",
            "quantity": 1,
            "unitPrice": "99",
            "taxTreatment": "goods",
            "timing": "now",
        },
    )
    assert answer.status_code == 201 and answer.get_json()["data"]["invoiceUid"]
    assert _count(OneOffCharge) == 2


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"description": "x", "quantity": "0", "unitPrice": "1"}, "body/quantity"),
        ({"description": "x", "quantity": "1", "unitPrice": "-1"}, "body/unitPrice"),
        ({"description": "", "quantity": "1", "unitPrice": "1"}, "body/description"),
        ({"description": "x", "quantity": 1.5, "unitPrice": "1"}, None),
        ({"description": "x", "quantity": "1", "unitPrice": "1", "timing": "later"}, None),
        ({"description": "x\u0000", "quantity": "1", "unitPrice": "1"}, None),
        ({"description": "x", "quantity": "1e400", "unitPrice": "1"}, "body/quantity"),
    ],
)
def test_bad_charges_are_refused_and_nothing_is_written(console, world, body, location):
    invoices = _count(Invoice)
    answer = console.post(f"/{world.a.tenant.public_id}/billing/charges", json=body)
    assert answer.status_code == 400, answer.get_json()
    if location:
        assert answer.get_json()["errors"][0]["location"] == location
    assert _count(OneOffCharge) == 0 and _count(Invoice) == invoices


def test_operations_are_in_the_openapi_document(console):
    spec = console.client.get("/api/v1/organizations/companies/openapi.json").get_json()
    paths = spec["paths"]
    for path in (
        "/api/v1/organizations/companies/{companyUid}/billing/subscriptions",
        "/api/v1/organizations/companies/{companyUid}/billing/subscriptions/{subscriptionUid}",
        "/api/v1/organizations/companies/{companyUid}/billing/subscriptions/{subscriptionUid}/preview",
        "/api/v1/organizations/companies/{companyUid}/billing/charges",
        "/api/v1/organizations/companies/{companyUid}/billing/usage",
    ):
        assert path in paths, sorted(paths)
