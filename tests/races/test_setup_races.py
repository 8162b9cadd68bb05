"""One effect per action: 20 concurrent requests at the operator's setup (subscriptions,
charges, coupons, sellers, companies, prices, usage).

Each race goes through the route an operator or a machine uses (console API with an admin
token and a fresh X-Request-id per racer, so idempotency does not hide the race; admin pages
with the admin's cookie); coupons have no HTTP surface yet and race through the service.
The losers get what a sequential second request gets: a 4xx in the surface's error shape,
or the same answer. Row locks only race on PostgreSQL: on SQLite the tests skip.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.catalog.coupons import add_coupon
from portal.catalog.models import (
    Coupon,
    OneOffCharge,
    Price,
    Subscription,
    SubscriptionChange,
    SubscriptionCoupon,
    SubscriptionItem,
    SubscriptionStatus,
)
from portal.catalog.products import CatalogInvalid
from portal.domain.pricing import add_interval
from portal.extensions import db
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import CreditNote, Invoice, InvoiceLine
from portal.ops.models import AuditLogEntry
from portal.tenancy.models import Seller, Tenant
from portal.usage.models import UsageRecord
from tests.api_console.conftest import admin_token
from tests.conftest import ON_POSTGRES
from tests.races.conftest import RACERS, fire, session_cookie
from tests.setup.subs_support import ACTOR, D, Shop

pytestmark = [
    pytest.mark.skipif(not ON_POSTGRES, reason="row locks race only on PostgreSQL"),
    pytest.mark.usefixtures("ledger_checked"),
]

CONSOLE = "/api/v1/organizations/companies"
SELLERS = "/api/v1/organizations/sellers"
CATALOG = "/api/v1/organizations/billing"
TODAY = dt.date.today()
#: Subscriptions here start 10 days ago, so an immediate cancellation today bills 10 days.
ANCHOR = TODAY - dt.timedelta(days=10)

SELLER = {
    "legalName": "Race Cloud GmbH",
    "addressLine1": "Torstraße 1",
    "postalCode": "10119",
    "city": "Berlin",
    "country": "DE",
    "email": "billing@race.example",
}
PROFILE = {
    "companyName": "Nordlicht Software GmbH",
    "addressLine1": "Hafenstraße 3",
    "postalCode": "20457",
    "city": "Hamburg",
    "country": "DE",
    "billingEmail": "ap@nordlicht.example",
}


@pytest.fixture
def shop(world) -> Shop:
    shop = Shop(world.a.tenant.seller)
    db.session.commit()
    return shop


@pytest.fixture
def token(app) -> str:
    return admin_token()


@pytest.fixture
def admin_cookies(client, auth, world) -> dict[str, str]:
    auth.login(world.admin.email)
    return session_cookie(client)


def _call(token: str, method: str, url: str, *, request_id: str | None = None, **kwargs):
    """A racer's console call: its own X-Request-id unless one is given."""

    def call(client, _):
        headers = {
            "Authorization": f"Bearer {token}",
            "X-Request-id": request_id or str(uuid.uuid4()),
        }
        return client.open(url, method=method, headers=headers, **kwargs)

    return call


def _count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def _audits(action: str, target_id: object | None = None) -> list[AuditLogEntry]:
    query = sa.select(AuditLogEntry).where(AuditLogEntry.action == action)
    if target_id is not None:
        query = query.where(AuditLogEntry.target_id == str(target_id))
    return list(db.session.scalars(query.order_by(AuditLogEntry.id)))


def _statuses(answers) -> list[int]:
    return sorted(answer.status_code for answer in answers)


def _error_types(answers, status: int) -> set[str]:
    """The console error types of the answers with ``status`` (checking the shape)."""
    types = set()
    for answer in answers:
        if answer.status_code != status:
            continue
        body = answer.get_json()
        assert body["data"] is None and body["meta"]["correlationId"], body
        types.update(error["type"] for error in body["errors"])
    return types


def _subscribed(tenant: Tenant, items, *, start: dt.date = ANCHOR) -> Subscription:
    """A monthly subscription of ``tenant`` whose current period started on ``start``."""
    subscription = Subscription(
        tenant_id=tenant.id,
        currency=tenant.currency,
        started_on=start,
        current_period_start=start,
        current_period_end=add_interval(start, "month", 1),
        items=[
            SubscriptionItem(tenant_id=tenant.id, price=price, quantity=D(quantity))
            for price, quantity in items
        ],
    )
    db.session.add(subscription)
    db.session.commit()
    return subscription


def _subscription_url(tenant: Tenant, subscription: Subscription) -> str:
    return f"{CONSOLE}/{tenant.public_id}/billing/subscriptions/{subscription.public_id}"


# -- subscriptions ---------------------------------------------------------------------------


def test_subscription_created_once_under_one_request_id(app, shop, token):
    """A company may have several subscriptions, so identical bodies under different ids
    are several subscriptions; under one X-Request-id they are one."""
    tenant = shop.company()
    db.session.commit()
    body = {
        "items": [{"priceUid": str(shop.seat.public_id), "quantity": "3"}],
        "startDate": TODAY.isoformat(),
    }
    url = f"{CONSOLE}/{tenant.public_id}/billing/subscriptions"
    answers = fire(app, _call(token, "POST", url, request_id=str(uuid.uuid4()), json=body))
    created = [a for a in answers if a.status_code == 201]
    # The others waited for the first answer and replay it (or, if it took too long, were
    # told it is in progress): never a second subscription.
    assert len(created) + len([a for a in answers if a.status_code == 409]) == RACERS
    assert _error_types(answers, 409) <= {"request_in_progress"}
    assert len({a.get_json()["data"]["instanceUid"] for a in created}) == 1
    assert [a.headers.get("X-Idempotent-Replay") for a in created].count(None) == 1
    assert _count(Subscription, Subscription.tenant_id == tenant.id) == 1
    assert len(_audits("subscription.create")) == 1


def test_cancel_at_period_end_once_from_the_console(app, shop, token):
    tenant = shop.company()
    subscription = _subscribed(tenant, [(shop.seat, 2)])
    url = _subscription_url(tenant, subscription)
    answers = fire(
        app,
        _call(token, "DELETE", url, query_string={"at": "periodEnd", "reason": "Budget"}),
    )
    # A repeat changes nothing and answers the pending cancellation, as the first did.
    assert _statuses(answers) == [200] * RACERS, _statuses(answers)
    assert {a.get_json()["data"]["subscription"]["cancelAtPeriodEnd"] for a in answers} == {True}
    assert len(_audits("subscription.cancel", subscription.public_id)) == 1
    db.session.refresh(subscription)
    assert subscription.cancel_at_period_end and subscription.cancel_reason == "Budget"
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert _count(Invoice, Invoice.tenant_id == tenant.id) == 0


def test_cancel_at_period_end_once_from_the_admin_page(app, shop, admin_cookies):
    tenant = shop.company()
    subscription = _subscribed(tenant, [(shop.seat, 2)])
    url = f"/admin/companies/{tenant.public_id}/subscriptions/{subscription.public_id}/cancel"
    answers = fire(
        app,
        lambda c, _: c.post(url, data={"when": "period_end", "reason": "Budget"}),
        cookies=admin_cookies,
    )
    assert _statuses(answers) == [303] * RACERS, _statuses(answers)
    assert len(_audits("subscription.cancel", subscription.public_id)) == 1
    db.session.refresh(subscription)
    assert subscription.cancel_at_period_end


def test_cancel_now_issues_one_final_invoice(app, shop, token):
    """Two seats at 10.00 for 10 days of the period: one final invoice, 19 refusals."""
    tenant = shop.company()
    subscription = _subscribed(tenant, [(shop.seat, 2)])
    url = _subscription_url(tenant, subscription)
    answers = fire(app, _call(token, "DELETE", url, query_string={"at": "now", "reason": "Gone"}))
    assert _statuses(answers) == [200] + [409] * (RACERS - 1), _statuses(answers)
    assert _error_types(answers, 409) == {"subscription_canceled"}
    [won] = [a.get_json()["data"] for a in answers if a.status_code == 200]
    invoices = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).all()
    assert [str(i.public_id) for i in invoices] == [won["finalInvoiceUid"]]
    # 20.00 for 10 of the period's days, plus 19 % VAT (hand-computed from the period length).
    days = (add_interval(ANCHOR, "month", 1) - ANCHOR).days
    net = (Decimal(2000) * 10 / days).quantize(Decimal(1), rounding="ROUND_HALF_UP")
    vat = (net * Decimal("0.19")).quantize(Decimal(1), rounding="ROUND_HALF_UP")
    assert invoices[0].amount_due_minor == int(net + vat)
    assert len(_audits("subscription.cancel", subscription.public_id)) == 1
    db.session.refresh(subscription)
    assert subscription.status == SubscriptionStatus.CANCELED


def test_cancel_now_after_the_period_is_invoiced_issues_one_credit_note(app, shop, token):
    tenant = shop.company()
    subscription = _subscribed(tenant, [(shop.seat, 2)], start=TODAY.replace(day=1))
    month = f"{TODAY:%Y-%m}"
    [invoice] = generate_invoices(db.session, [tenant], month)
    finalize_invoice(db.session, invoice, issue_date=TODAY)
    db.session.commit()
    url = _subscription_url(tenant, subscription)
    on = {"at": "now", "reason": "Gone", "effectiveDate": TODAY.isoformat()}
    answers = fire(app, _call(token, "DELETE", url, query_string=on))
    assert _statuses(answers) == [200] + [409] * (RACERS - 1), _statuses(answers)
    assert _error_types(answers, 409) == {"subscription_canceled"}
    notes = db.session.scalars(
        sa.select(CreditNote).where(CreditNote.invoice_id == invoice.id)
    ).all()
    [won] = [a.get_json()["data"] for a in answers if a.status_code == 200]
    assert [str(n.public_id) for n in notes] == [won["creditNoteUid"]]
    assert len(_audits("subscription.cancel", subscription.public_id)) == 1


def test_resume_once(app, shop, token):
    tenant = shop.company()
    subscription = _subscribed(tenant, [(shop.seat, 2)])
    subscription.cancel_at_period_end = True
    subscription.cancel_reason = "Budget"
    db.session.commit()
    url = _subscription_url(tenant, subscription)
    answers = fire(app, _call(token, "PATCH", url, json={"cancelAtPeriodEnd": False}))
    assert _statuses(answers) == [200] + [409] * (RACERS - 1), _statuses(answers)
    assert _error_types(answers, 409) == {"not_pending_cancellation"}
    assert len(_audits("subscription.resume", subscription.public_id)) == 1
    db.session.refresh(subscription)
    assert not subscription.cancel_at_period_end and subscription.cancel_reason is None


def test_item_quantity_changed_once_from_the_console(app, shop, token):
    tenant = shop.company()
    subscription = _subscribed(tenant, [(shop.seat, 2)])
    item = subscription.items[0]
    url = _subscription_url(tenant, subscription)
    change = {"priceUid": str(shop.seat.public_id), "quantity": "5", "effectiveDate": str(TODAY)}
    answers = fire(app, _call(token, "PATCH", url, json={"change": change}))
    # A repeat asks for what is already so: the same answer, nothing recorded.
    assert _statuses(answers) == [200] * RACERS, _statuses(answers)
    assert {a.get_json()["data"]["items"][0]["quantity"] for a in answers} == {"5"}
    changes = db.session.scalars(
        sa.select(SubscriptionChange).where(SubscriptionChange.subscription_item_id == item.id)
    ).all()
    assert [(c.old_quantity, c.new_quantity) for c in changes] == [(D(2), D(5))]
    assert len(_audits("subscription.change", subscription.public_id)) == 1


# -- one-off charges -------------------------------------------------------------------------


def test_charge_issued_now_once_under_one_request_id(app, shop, token):
    tenant = shop.company()
    db.session.commit()
    url = f"{CONSOLE}/{tenant.public_id}/billing/charges"
    body = {"description": "Setup", "quantity": "2", "unitPrice": "149.90", "timing": "now"}
    answers = fire(app, _call(token, "POST", url, request_id=str(uuid.uuid4()), json=body))
    created = [a for a in answers if a.status_code == 201]
    assert len(created) + len([a for a in answers if a.status_code == 409]) == RACERS
    assert _error_types(answers, 409) <= {"request_in_progress"}
    assert len({a.get_json()["data"]["invoiceUid"] for a in created}) == 1
    assert _count(OneOffCharge, OneOffCharge.tenant_id == tenant.id) == 1
    [invoice] = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).all()
    # 2 × 149.90 = 299.80, plus 19 % VAT 56.96: 356.76.
    assert invoice.amount_due_minor == 35676
    assert len(_audits("charge.create")) == 1


def test_charge_claimed_by_one_invoice_when_generations_race(app, shop, token):
    """20 generation requests for this month and the last one: the pending charge lands on
    exactly one of the two invoices."""
    tenant = shop.company()
    start = (TODAY.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    _subscribed(tenant, [(shop.seat, 1)], start=start)
    charge = OneOffCharge(
        tenant_id=tenant.id,
        description="Setup",
        quantity=D(1),
        unit_price=D("100.00"),
        currency="EUR",
        created_by="race",
    )
    db.session.add(charge)
    db.session.commit()
    months = [f"{start:%Y-%m}", f"{TODAY:%Y-%m}"]
    url = f"{CONSOLE}/{tenant.public_id}/billing/generateInvoices"

    def call(client, i):
        return _call(token, "POST", url, query_string={"period": months[i % 2]})(client, i)

    answers = fire(app, call)
    assert {a.status_code for a in answers} <= {200, 202}, _statuses(answers)
    invoices = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).all()
    assert len(invoices) == 2
    db.session.refresh(charge)
    assert charge.invoice_id in {i.id for i in invoices}
    lines = db.session.scalars(
        sa.select(InvoiceLine).where(InvoiceLine.invoice_id.in_([i.id for i in invoices]))
    ).all()
    charged = [line for line in lines if (line.details or {}).get("one_off_charge")]
    assert [line.invoice_id for line in charged] == [charge.invoice_id]


# -- coupons (no HTTP surface puts them on subscriptions: the service races) -----------------


def _coupon(shop: Shop, code: str = "WELCOME") -> Coupon:
    coupon = Coupon(seller_id=shop.seller.id, code=code, name="Welcome", percent_off=D(10))
    db.session.add(coupon)
    db.session.commit()
    return coupon


def _in_own_session(app, work):
    """``work(session)`` in a racer's own app context and session; True if it took effect."""

    def call(_, i):
        with app.app_context():
            try:
                done = work(db.session, i)
                db.session.commit()
                return done
            except CatalogInvalid as exc:
                db.session.rollback()
                return exc.errors

    return call


def _coupons_url(tenant, subscription_id) -> str:
    subscription = db.session.get_one(Subscription, subscription_id)
    return f"{CONSOLE}/{tenant.public_id}/billing/subscriptions/{subscription.public_id}/coupons"


def test_coupon_once_per_company_across_its_subscriptions(app, shop, token):
    """The rule: a coupon once per company. 20 of its subscriptions get it at once through
    the console API: one 201, the rest 409 coupon_applied."""
    tenant = shop.company()
    subscription_ids = [_subscribed(tenant, [(shop.seat, 1)]).id for _ in range(RACERS)]
    coupon = _coupon(shop)
    coupon_id, code = coupon.id, coupon.code
    urls = [_coupons_url(tenant, sid) for sid in subscription_ids]

    def call(client, i):
        return _call(token, "POST", urls[i], json={"code": code})(client, i)

    answers = fire(app, call)
    assert _statuses(answers) == [201] + [409] * (RACERS - 1)
    assert _error_types(answers, 409) == {"coupon_applied"}
    assert _count(SubscriptionCoupon, SubscriptionCoupon.coupon_id == coupon_id) == 1
    assert len(_audits("subscription.coupon_add")) == 1


def test_same_coupon_on_one_subscription_once(app, shop, token):
    tenant = shop.company()
    subscription_id = _subscribed(tenant, [(shop.seat, 1)]).id
    coupon = _coupon(shop)
    url = _coupons_url(tenant, subscription_id)

    answers = fire(app, _call(token, "POST", url, json={"couponUid": str(coupon.public_id)}))
    assert _statuses(answers) == [201] + [409] * (RACERS - 1)
    assert _count(SubscriptionCoupon, SubscriptionCoupon.subscription_id == subscription_id) == 1


def test_coupon_removed_once(app, shop, token):
    tenant = shop.company()
    subscription = _subscribed(tenant, [(shop.seat, 1)])
    coupon = _coupon(shop)
    applied = add_coupon(db.session, subscription, coupon, ACTOR)
    db.session.commit()
    url = f"{_coupons_url(tenant, subscription.id)}/{coupon.public_id}"

    answers = fire(app, _call(token, "DELETE", url))
    assert _statuses(answers) == [200] * RACERS
    assert len(_audits("subscription.coupon_remove")) == 1
    db.session.refresh(applied)
    assert applied.removed_at is not None


def test_coupon_archived_once_from_the_console(app, shop, token):
    coupon = _coupon(shop)
    answers = fire(app, _call(token, "DELETE", f"{CATALOG}/coupons/{coupon.public_id}"))
    assert _statuses(answers) == [200] * RACERS, _statuses(answers)
    assert len(_audits("coupon.archive", coupon.public_id)) == 1


# -- sellers ---------------------------------------------------------------------------------


def _patch(path: str, value):
    return [{"op": "replace", "path": path, "value": value}]


def test_seller_patches_serialize_without_lost_updates(app, world, token):
    """Even racers change the invoice number format, odd ones the city: each change is
    audited against what the one before it wrote, and the row ends as the last left it."""
    seller = world.a.tenant.seller
    phone_before = seller.phone
    url = f"{SELLERS}/{seller.public_id}"

    def call(client, i):
        body = (
            _patch("/invoiceNumberFormat", f"R{i}-{{year}}-{{seq:05d}}")
            if i % 2 == 0
            else _patch("/city", f"City {i}")
        )
        return _call(token, "PATCH", url, json=body)(client, i)

    answers = fire(app, call)
    assert _statuses(answers) == [200] * RACERS, _statuses(answers)
    entries = _audits("seller.update", seller.public_id)
    assert len(entries) == RACERS
    db.session.refresh(seller)
    for field, prefix in (("invoice_number_format", "R"), ("city", "City")):
        changes = [e.data for e in entries if field in e.data["after"]]
        assert len(changes) == RACERS // 2
        assert all(set(e["after"]) == {field} for e in changes)  # nothing else overwritten
        for earlier, later in zip(changes, changes[1:], strict=False):
            assert later["before"][field] == earlier["after"][field]
        assert getattr(seller, field) == changes[-1]["after"][field]
        assert getattr(seller, field).startswith(prefix)
    assert seller.phone == phone_before


def test_seller_patch_test_operations_compare_under_the_lock(app, world, token):
    """Test-and-set: 20 racers each send "test that the city is what it was, then replace
    it". Only one may see the old city; the others find it changed: 409."""
    seller = world.a.tenant.seller
    city = seller.city
    url = f"{SELLERS}/{seller.public_id}"

    def call(client, i):
        body = [
            {"op": "test", "path": "/city", "value": city},
            {"op": "replace", "path": "/city", "value": f"City {i}"},
        ]
        return _call(token, "PATCH", url, json=body)(client, i)

    answers = fire(app, call)
    assert _statuses(answers) == [200] + [409] * (RACERS - 1)
    assert len(_audits("seller.update", seller.public_id)) == 1


def test_company_patch_test_operations_compare_under_the_lock(app, world, token):
    tenant = world.a.tenant
    name = tenant.name
    url = f"{CONSOLE}/{tenant.public_id}"

    def call(client, i):
        body = [
            {"op": "test", "path": "/name", "value": name},
            {"op": "replace", "path": "/name", "value": f"Renamed {i}"},
        ]
        return _call(token, "PATCH", url, json=body)(client, i)

    answers = fire(app, call)
    assert _statuses(answers) == [200] + [409] * (RACERS - 1)
    db.session.refresh(tenant)
    assert tenant.name.startswith("Renamed ")


def test_seller_created_once_under_one_request_id(app, world, token):
    """Sellers may share a number prefix (numbers are unique per seller), so the rule
    raced is the request id: one seller."""
    before = _count(Seller)
    answers = fire(app, _call(token, "POST", SELLERS, request_id=str(uuid.uuid4()), json=SELLER))
    created = [a for a in answers if a.status_code == 201]
    assert len(created) + len([a for a in answers if a.status_code == 409]) == RACERS
    assert _error_types(answers, 409) <= {"request_in_progress"}
    assert len({a.get_json()["data"]["sellerUid"] for a in created}) == 1
    assert _count(Seller) == before + 1
    assert len(_audits("seller.create")) == 1


# -- companies -------------------------------------------------------------------------------


def _company_body(seller: Seller, **extra) -> dict:
    return {"name": "Nordlicht Software", "sellerUid": str(seller.public_id),
            "billingProfile": dict(PROFILE), **extra}  # fmt: skip


def test_company_slug_taken_once(app, world, token):
    seller = world.a.tenant.seller
    body = _company_body(seller, slug="nordlicht")
    answers = fire(app, _call(token, "POST", CONSOLE, json=body))
    # A taken slug is the console's 409 at the property, as for a sequential second one.
    assert _statuses(answers) == [201] + [409] * (RACERS - 1), _statuses(answers)
    assert _error_types(answers, 409) == {"slug_taken"}
    assert _count(Tenant, Tenant.slug == "nordlicht") == 1
    assert len(_audits("company.create")) == 1


def test_companies_of_one_name_get_their_own_derived_slugs(app, world, token):
    """Without a slug each company gets the name's, or the first free ``-2``, ``-3``…:
    20 creations of one name at once are 20 companies, never a slug error."""
    seller = world.a.tenant.seller
    answers = fire(app, _call(token, "POST", CONSOLE, json=_company_body(seller)))
    assert _statuses(answers) == [201] * RACERS, [a.get_json() for a in answers][:3]
    slugs = {a.get_json()["data"]["slug"] for a in answers}
    assert slugs == {"nordlicht-software"} | {f"nordlicht-software-{n}" for n in range(2, 21)}
    assert len(_audits("company.create")) == RACERS


def test_company_archived_once_from_the_console(app, shop, token):
    tenant = shop.company()
    db.session.commit()
    answers = fire(app, _call(token, "DELETE", f"{CONSOLE}/{tenant.public_id}"))
    assert _statuses(answers) == [200] + [409] * (RACERS - 1), _statuses(answers)
    assert _error_types(answers, 409) == {"already_archived"}
    [entry] = _audits("company.archive", tenant.public_id)
    db.session.refresh(tenant)
    assert entry.data["after"]["archived_at"] == tenant.archived_at.isoformat()


def test_company_archived_once_from_the_admin_page(app, shop, admin_cookies):
    tenant = shop.company()
    db.session.commit()
    url = f"/admin/companies/{tenant.public_id}/archive"
    answers = fire(app, lambda c, _: c.post(url), cookies=admin_cookies)
    assert _statuses(answers) == [303] * RACERS, _statuses(answers)
    assert len(_audits("company.archive", tenant.public_id)) == 1


# -- prices ----------------------------------------------------------------------------------


def _invoiced(shop: Shop, price: Price) -> None:
    """An issued invoice with a line of ``price`` (so editing it makes a new version)."""
    tenant = shop.company()
    _subscribed(tenant, [(price, 1)], start=TODAY.replace(day=1))
    [invoice] = generate_invoices(db.session, [tenant], f"{TODAY:%Y-%m}")
    finalize_invoice(db.session, invoice, issue_date=TODAY)
    db.session.commit()


def test_invoiced_price_edited_at_once_makes_one_version(app, shop, token):
    price = shop.seat
    _invoiced(shop, price)
    url = f"{CATALOG}/prices/{price.public_id}"

    def call(client, i):
        return _call(token, "PATCH", url, json={"nickname": f"Seat {i}"})(client, i)

    answers = fire(app, call)
    assert _statuses(answers) == [200] + [400] * (RACERS - 1), _statuses(answers)
    assert _error_types(answers, 400)  # the console's error shape, with a type
    versions = db.session.scalars(sa.select(Price).where(Price.replaces_id == price.id)).all()
    assert len(versions) == 1 and versions[0].version == 2 and versions[0].code == "seat"
    assert len(_audits("price.version")) == 1
    db.session.refresh(price)
    assert price.code == "seat@v1" and price.archived_at is not None


def test_prices_renamed_to_one_code_at_once_take_it_once(app, shop, token):
    """20 prices of one product renamed to the same code: one gets it, 19 are told it is
    taken (the unique key must not surface as a 5xx)."""
    prices = [shop.price(f"p{i}", shop.seat.model, unit_amount=D(1)) for i in range(RACERS)]
    db.session.commit()
    urls = [f"{CATALOG}/prices/{p.public_id}" for p in prices]

    def call(client, i):
        return _call(token, "PATCH", urls[i], json={"code": "same"})(client, i)

    answers = fire(app, call)
    assert _statuses(answers) == [200] + [400] * (RACERS - 1), _statuses(answers)
    assert _count(Price, Price.code == "same") == 1


def test_products_renamed_to_one_code_at_once_take_it_once(app, shop, token):
    codes = [f"prod{i}" for i in range(RACERS)]
    uids = []
    for code in codes:
        answer = _call(token, "POST", f"{CATALOG}/products",
                       json={"sellerUid": str(shop.seller.public_id), "code": code,
                             "name": code})(app.test_client(), 0)  # fmt: skip
        assert answer.status_code == 201, answer.get_json()
        uids.append(answer.get_json()["data"]["productUid"])

    def call(client, i):
        return _call(token, "PATCH", f"{CATALOG}/products/{uids[i]}", json={"code": "same"})(
            client, i
        )

    answers = fire(app, call)
    assert _statuses(answers) == [200] + [400] * (RACERS - 1), _statuses(answers)


def test_price_archived_once(app, shop, token):
    price = shop.seat
    answers = fire(app, _call(token, "DELETE", f"{CATALOG}/prices/{price.public_id}"))
    assert _statuses(answers) == [200] * RACERS, _statuses(answers)
    assert len(_audits("price.archive", price.public_id)) == 1


# -- usage -----------------------------------------------------------------------------------


def test_usage_batch_with_the_same_keys_is_stored_once(app, shop, token):
    tenant = shop.company()
    db.session.commit()
    stamp = dt.datetime.combine(TODAY, dt.time(9), tzinfo=dt.UTC).isoformat()
    events = [
        {"idempotencyKey": f"k{n}", "metric": "api_calls", "quantity": str(n), "timestamp": stamp}
        for n in range(1, 6)
    ]
    url = f"{CONSOLE}/{tenant.public_id}/billing/usage"
    answers = fire(app, _call(token, "POST", url, json={"events": events}))
    assert _statuses(answers) == [200] * RACERS, _statuses(answers)
    created = Counter(
        result["idempotencyKey"]
        for answer in answers
        for result in answer.get_json()["data"]["results"]
        if result["status"] == "created"
    )
    assert created == {f"k{n}": 1 for n in range(1, 6)}
    stored = db.session.scalars(
        sa.select(UsageRecord.quantity).where(UsageRecord.tenant_id == tenant.id)
    ).all()
    assert sorted(stored) == [D(1), D(2), D(3), D(4), D(5)]


def test_usage_racing_generation_is_billed_or_refused_never_lost(app, shop, token, admin_cookies):
    """Half the racers post usage of last month, half generate last month's invoice: an
    event is accepted only if the invoice bills it, else it is refused as invoiced."""
    tenant = shop.company()
    last_month = (TODAY.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    _subscribed(tenant, [(shop.seat, 1), (shop.api, 0)], start=last_month)
    stamp = dt.datetime.combine(last_month + dt.timedelta(days=14), dt.time(9), tzinfo=dt.UTC)
    usage_url = f"{CONSOLE}/{tenant.public_id}/billing/usage"
    generate_url = f"/admin/companies/{tenant.public_id}/generate"

    def call(client, i):
        if i % 2 == 0:
            return client.post(generate_url, data={"month": f"{last_month:%Y-%m}"})
        event = {"idempotencyKey": f"u{i}", "metric": "api_calls", "quantity": "700",
                 "timestamp": stamp.isoformat()}  # fmt: skip
        return _call(token, "POST", usage_url, json={"events": [event]})(client, i)

    answers = fire(app, call, cookies=admin_cookies)
    generated, posted = answers[0::2], answers[1::2]
    assert {a.status_code for a in generated} == {303}, _statuses(generated)
    assert {a.status_code for a in posted} <= {200, 409}, _statuses(posted)
    assert _error_types(posted, 409) <= {"period_invoiced"}
    accepted = sum(1 for a in posted if a.status_code == 200)
    [invoice] = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).all()
    billed = sum(line.quantity for line in invoice.lines if line.price_id == shop.api.id)
    stored = _count(UsageRecord, UsageRecord.tenant_id == tenant.id)
    assert stored == accepted
    assert billed == 700 * accepted, (billed, accepted)


def test_usage_racing_the_invoice_run_is_billed_or_refused_never_lost(app, shop, token):
    """One racer runs the month's invoice run (all companies, in batches), the others post
    usage of that month for one company: each event is billed by the run or refused."""
    from portal.invoices.run import run_invoices

    tenant = shop.company()
    last_month = (TODAY.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    _subscribed(tenant, [(shop.seat, 1), (shop.api, 0)], start=last_month)
    stamp = dt.datetime.combine(last_month + dt.timedelta(days=14), dt.time(9), tzinfo=dt.UTC)
    usage_url = f"{CONSOLE}/{tenant.public_id}/billing/usage"

    def call(client, i):
        if i == 0:
            with app.app_context():
                run_invoices(db.session, f"{last_month:%Y-%m}", batch_size=1)
                db.session.commit()
            return None
        event = {"idempotencyKey": f"r{i}", "metric": "api_calls", "quantity": "300",
                 "timestamp": stamp.isoformat()}  # fmt: skip
        return _call(token, "POST", usage_url, json={"events": [event]})(client, i)

    posted = fire(app, call)[1:]
    assert {a.status_code for a in posted} <= {200, 409}, _statuses(posted)
    assert _error_types(posted, 409) <= {"period_invoiced"}
    accepted = sum(1 for a in posted if a.status_code == 200)
    [invoice] = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).all()
    billed = sum(line.quantity for line in invoice.lines if line.price_id == shop.api.id)
    assert _count(UsageRecord, UsageRecord.tenant_id == tenant.id) == accepted
    assert billed == 300 * accepted, (billed, accepted)
