"""Coupons on a subscription: the console operations and the admin pages that add and
remove them, their refusals (4xx, nothing written) and their effect on the next invoice."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.coupons import archive_coupon, create_coupon
from portal.catalog.models import SubscriptionCoupon
from portal.catalog.subscriptions import NewItem, cancel_subscription, create_subscription
from portal.extensions import db
from portal.ops.models import AuditLogEntry
from tests.api_console.conftest import ConsoleClient, admin_token
from tests.factories.tenancy import SellerFactory
from tests.setup.subs_support import ACTOR, D, Shop

MONTH_START = dt.date.today().replace(day=1)


@pytest.fixture
def shop(world) -> Shop:
    shop = Shop(world.a.tenant.seller)
    db.session.commit()
    return shop


@pytest.fixture
def subscription(world, shop):
    # 3 seats × 10.00 = 30.00 a month, and metered API calls (none used).
    subscription = create_subscription(
        db.session,
        world.a.tenant,
        ACTOR,
        items=[NewItem(shop.seat, D(3)), NewItem(shop.api)],
        start=MONTH_START,
    )
    db.session.commit()
    return subscription


def _coupon(seller, code, **fields):
    coupon = create_coupon(
        db.session, seller, {"code": code, "name": f"Coupon {code}", **fields}, ACTOR
    )
    db.session.commit()
    return coupon


def _applied() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(SubscriptionCoupon))


def _audits(action: str) -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(AuditLogEntry.action == action))


@pytest.fixture
def console(client, world) -> ConsoleClient:
    return ConsoleClient(client, admin_token())


def _path(world, subscription, tail=""):
    return (
        f"/{world.a.tenant.public_id}/billing/subscriptions/{subscription.public_id}/coupons{tail}"
    )


# -- API --------------------------------------------------------------------------------------


def test_apply_by_code_discounts_the_previewed_invoice_then_remove(console, world, subscription):
    seller = world.a.tenant.seller
    coupon = _coupon(seller, "SPRING", percent_off="20")
    answer = console.post(_path(world, subscription), json={"code": "SPRING"})
    assert answer.status_code == 201, answer.get_json()
    [applied] = answer.get_json()["data"]["coupons"]
    assert applied["couponUid"] == str(coupon.public_id)
    assert (applied["percentOff"], applied["applies"], applied["removedAt"]) == ("20", True, None)
    assert _audits("subscription.coupon_add") == 1

    # The period's invoice: 30.00 of seats, 20 % off = 6.00 allowance, 24.00 net,
    # 19 % VAT = 4.56, 28.56 due (a German buyer of a German seller).
    preview = console.post(
        f"/{world.a.tenant.public_id}/billing/subscriptions/{subscription.public_id}/preview",
        json={},
    ).get_json()["data"]
    assert [a["amountMinor"] for a in preview["allowances"]] == [600]
    assert preview["totals"]["taxExclusiveMinor"] == 2400
    assert preview["totals"]["amountDueMinor"] == 2856

    shown = console.get(
        f"/{world.a.tenant.public_id}/billing/subscriptions/{subscription.public_id}"
    ).get_json()["data"]
    assert [c["code"] for c in shown["coupons"]] == ["SPRING"]

    removed = console.delete(_path(world, subscription, f"/{coupon.public_id}"))
    assert removed.status_code == 200, removed.get_json()
    [gone] = removed.get_json()["data"]["coupons"]
    assert gone["applies"] is False and gone["removedAt"] is not None
    again = console.delete(_path(world, subscription, f"/{coupon.public_id}"))
    assert again.status_code == 200
    assert _audits("subscription.coupon_remove") == 1
    after = console.post(
        f"/{world.a.tenant.public_id}/billing/subscriptions/{subscription.public_id}/preview",
        json={},
    ).get_json()["data"]
    assert after["allowances"] == [] and after["totals"]["amountDueMinor"] == 3570


def test_a_coupon_the_company_has_is_a_409_and_writes_nothing(console, world, subscription):
    coupon = _coupon(world.a.tenant.seller, "ONCE", amount_off_minor=500, currency="EUR")
    assert console.post(_path(world, subscription), json={"couponUid": str(coupon.public_id)})
    twice = console.post(_path(world, subscription), json={"couponUid": str(coupon.public_id)})
    assert twice.status_code == 409
    [error] = twice.get_json()["errors"]
    assert error["type"] == "coupon_applied"
    assert _applied() == 1 and _audits("subscription.coupon_add") == 1


@pytest.mark.parametrize(
    ("case", "location"),
    [
        ("neither", "body"),
        ("both", "body"),
        ("unknown_code", "body/code"),
        ("malformed_uid", "body/couponUid"),
        ("other_seller", "body/couponUid"),
        ("archived", "body/couponUid"),
        ("other_currency", "body/couponUid"),
        ("extra_field", "body/extra"),
    ],
)
def test_bad_coupon_requests_are_400_and_write_nothing(
    console, world, subscription, case, location
):
    seller = world.a.tenant.seller
    good = _coupon(seller, "GOOD", percent_off="10")
    foreign = _coupon(SellerFactory(), "FOREIGN", percent_off="10")
    old = _coupon(seller, "OLD", percent_off="10")
    archive_coupon(db.session, old, ACTOR)
    usd = _coupon(seller, "USD", amount_off_minor=500, currency="USD")
    db.session.commit()
    body = {
        "neither": {},
        "both": {"couponUid": str(good.public_id), "code": "GOOD"},
        "unknown_code": {"code": "NOPE"},
        "malformed_uid": {"couponUid": "not-a-uid"},
        "other_seller": {"couponUid": str(foreign.public_id)},
        "archived": {"couponUid": str(old.public_id)},
        "other_currency": {"couponUid": str(usd.public_id)},
        "extra_field": {"code": "GOOD", "extra": 1},
    }[case]
    answer = console.post(_path(world, subscription), json=body)
    assert answer.status_code == 400, answer.get_json()
    errors = answer.get_json()["errors"]
    assert errors and errors[0]["location"].startswith(location), errors
    assert _applied() == 0


def test_a_canceled_subscription_takes_no_coupon(console, world, subscription):
    _coupon(world.a.tenant.seller, "LATE", percent_off="10")
    cancel_subscription(
        db.session, subscription, ACTOR, at_period_end=False, reason="moved", on=MONTH_START
    )
    db.session.commit()
    answer = console.post(_path(world, subscription), json={"code": "LATE"})
    assert answer.status_code == 409
    assert answer.get_json()["errors"][0]["type"] == "subscription_canceled"
    assert _applied() == 0


def test_another_company_s_subscription_and_unknown_coupons_are_404(console, world, subscription):
    coupon = _coupon(world.a.tenant.seller, "MINE", percent_off="10")
    other = f"/{world.b.tenant.public_id}/billing/subscriptions/{subscription.public_id}/coupons"
    assert console.post(other, json={"code": "MINE"}).status_code == 404
    never = console.delete(_path(world, subscription, f"/{coupon.public_id}"))
    assert never.status_code == 404
    assert never.get_json()["errors"][0]["location"] == "path/couponUid"
    assert console.delete(_path(world, subscription, "/not-a-uid")).status_code == 404
    assert _applied() == 0


# -- pages ------------------------------------------------------------------------------------


@pytest.fixture
def admin(client, auth, world):
    auth.login(world.admin.email)
    return client


def _page(world, subscription, tail=""):
    company = world.a.tenant.public_id
    return f"/admin/companies/{company}/subscriptions/{subscription.public_id}/coupons{tail}"


def test_coupon_page_offers_what_fits_adds_inline_errors_and_removes(admin, world, subscription):
    seller = world.a.tenant.seller
    percent = _coupon(seller, "TENOFF", percent_off="10")
    _coupon(seller, "FIVE", amount_off_minor=500, currency="EUR")
    _coupon(seller, "DOLLARS", amount_off_minor=500, currency="USD")
    archive_coupon(db.session, _coupon(seller, "GONE", percent_off="5"), ACTOR)
    db.session.commit()

    listing = admin.get(f"/admin/companies/{world.a.tenant.public_id}/subscriptions")
    assert _page(world, subscription) in listing.get_data(as_text=True)
    page = admin.get(_page(world, subscription)).get_data(as_text=True)
    assert "TENOFF" in page and "FIVE" in page
    assert "DOLLARS" not in page and "GONE" not in page
    assert "No coupon on this subscription." in page

    empty = admin.post(_page(world, subscription), data={"coupon": ""})
    assert empty.status_code == 200  # re-rendered inline, as every admin form
    assert "Choose a coupon." in empty.get_data(as_text=True)
    assert _applied() == 0

    added = admin.post(_page(world, subscription), data={"coupon": str(percent.public_id)})
    assert added.status_code == 303
    page = admin.get(_page(world, subscription)).get_data(as_text=True)
    assert "Applies" in page
    listing = admin.get(f"/admin/companies/{world.a.tenant.public_id}/subscriptions")
    assert "Coupons: TENOFF" in listing.get_data(as_text=True)

    twice = admin.post(_page(world, subscription), data={"coupon": str(percent.public_id)})
    assert twice.status_code == 200
    assert "The company has this coupon already." in twice.get_data(as_text=True)
    assert _applied() == 1

    confirm = admin.get(_page(world, subscription, f"/{percent.public_id}/remove"))
    assert confirm.status_code == 200 and "Yes, remove it" in confirm.get_data(as_text=True)
    assert admin.post(_page(world, subscription, f"/{percent.public_id}/remove")).status_code == 303
    page = admin.get(_page(world, subscription)).get_data(as_text=True)
    assert "Removed on" in page
    assert _audits("subscription.coupon_remove") == 1


def test_coupon_pages_of_another_company_or_an_unknown_coupon_are_404(admin, world, subscription):
    coupon = _coupon(world.a.tenant.seller, "X", percent_off="10")
    other = _page(world, subscription).replace(
        str(world.a.tenant.public_id), str(world.b.tenant.public_id)
    )
    assert admin.get(other).status_code == 404
    assert admin.post(other, data={"coupon": str(coupon.public_id)}).status_code == 404
    assert admin.get(_page(world, subscription, f"/{coupon.public_id}/remove")).status_code == 404
    assert admin.post(_page(world, subscription, "/nope/remove")).status_code == 404
    assert _applied() == 0


def test_the_coupon_page_in_german(admin, world, subscription):
    seller = world.a.tenant.seller
    coupon = _coupon(seller, "ZEHN", amount_off_minor=1050, currency="EUR")
    world.admin.locale = "de"
    db.session.commit()
    page = admin.get(_page(world, subscription)).get_data(as_text=True)
    assert "Gutschein hinzufügen" in page and "Kein Gutschein auf diesem Abonnement." in page
    assert "10,50\xa0€" in page or "10,50 €" in page
    admin.post(_page(world, subscription), data={"coupon": str(coupon.public_id)})
    page = admin.get(_page(world, subscription)).get_data(as_text=True)
    assert "Gilt" in page and "auf 0 Rechnungen angewandt" in page
    confirm = admin.get(_page(world, subscription, f"/{coupon.public_id}/remove"))
    assert "wird vom Abonnement von" in confirm.get_data(as_text=True)
