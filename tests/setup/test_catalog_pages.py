"""Admin pages of the catalog and coupons: lists, forms with inline errors, confirmations."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.catalog.models import Coupon, Plan, Price
from portal.extensions import db
from tests.setup.catalog_support import count

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(client, auth, world):
    auth.login(world.admin.email)
    return client


@pytest.fixture
def seller_uid(world):
    return str(world.a.tenant.seller.public_id)


def _product(admin, seller_uid, code="cloud", name="Cloud Platform"):
    answer = admin.post("/admin/catalog", data={"seller": seller_uid, "code": code, "name": name})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return db.session.scalars(sa.select(Plan).where(Plan.code == code)).one()


def test_nav_lists_catalog_and_coupons(admin):
    page = admin.get("/admin/catalog").get_data(as_text=True)
    assert ">Catalog</a>" in page and ">Coupons</a>" in page and "No products yet." in page


def test_products_list_search_and_paging(admin, seller_uid):
    for n in range(27):
        _product(admin, seller_uid, f"p{n:02d}", f"Product {n:02d}")
    page = admin.get("/admin/catalog").get_data(as_text=True)
    assert "Page 1 of 2" in page and "Product 26" in page
    assert "Product 00" in admin.get("/admin/catalog?page=2").get_data(as_text=True)
    fragment = admin.get("/admin/catalog?q=product 05", headers=HX).get_data(as_text=True)
    assert "Product 05" in fragment and "Product 06" not in fragment and "<html" not in fragment
    assert "No products match." in admin.get("/admin/catalog?q=zzz").get_data(as_text=True)
    assert admin.get("/admin/catalog?page=x").status_code == 200


def test_product_form_errors_inline(admin, seller_uid):
    _product(admin, seller_uid)
    answer = admin.post("/admin/catalog", data={"seller": seller_uid, "code": "cloud", "name": ""})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "A product with this code exists already." in body or "This field is required." in body
    assert count(Plan) == 1
    bad_seller = admin.post("/admin/catalog", data={"seller": "x", "code": "a", "name": "A"})
    assert "Choose the seller." in bad_seller.get_data(as_text=True)


def test_price_forms_for_every_model(admin, seller_uid):
    plan = _product(admin, seller_uid)
    url = f"/admin/catalog/{plan.public_id}/prices"
    form = admin.get(f"{url}/new?model=graduated&usage_kind=metered").get_data(as_text=True)
    assert (
        'name="tier-0-up_to"' in form and 'name="tier-1-up_to"' in form and 'name="metric"' in form
    )
    assert 'name="unit_amount"' not in form
    swapped = admin.get(f"{url}/new?model=package", headers=HX).get_data(as_text=True)
    assert 'name="package_size"' in swapped and "<html" not in swapped
    added = admin.post(
        url, data={"model": "volume", "tier_count": "2", "tier-0-up_to": "10", "add_tier": "1"}
    ).get_data(as_text=True)
    assert 'name="tier-2-up_to"' in added and count(Price) == 0
    base = {
        "currency": "EUR",
        "interval": "month",
        "interval_count": "1",
        "unit_code": "C62",
        "trial_days": "0",
        "tax_treatment": "services",
        "usage_kind": "licensed",
    }
    for code, fields in [
        ("flat", {"model": "flat", "unit_amount": "49,00"}),
        ("seats", {"model": "per_unit", "unit_amount": "12", "self_serve": "on"}),
        (
            "gb",
            {
                "model": "package",
                "unit_amount": "10",
                "package_size": "100",
                "usage_kind": "metered",
                "metric": "gb",
            },
        ),
        (
            "api",
            {
                "model": "graduated",
                "usage_kind": "metered",
                "metric": "api_calls",
                "tier_count": "3",
                "tier-0-up_to": "1000",
                "tier-0-unit_amount": "0",
                "tier-1-up_to": "10000",
                "tier-1-unit_amount": "0.002",
                "tier-2-unit_amount": "0.001",
            },
        ),
    ]:
        answer = admin.post(url, data={**base, "code": code, "nickname": code, **fields})
        assert answer.status_code == 303, answer.get_data(as_text=True)
    api = db.session.scalars(sa.select(Price).where(Price.code == "api")).one()
    assert [t.up_to for t in api.tiers][-1] is None and len(api.tiers) == 3
    page = admin.get(f"/admin/catalog/{plan.public_id}").get_data(as_text=True)
    assert "api_calls" in page and "Self-serve" in page


def test_price_errors_inline_and_nothing_written(admin, seller_uid):
    plan = _product(admin, seller_uid)
    url = f"/admin/catalog/{plan.public_id}/prices"
    answer = admin.post(
        url,
        data={
            "code": "api",
            "nickname": "API",
            "currency": "EUX",
            "model": "graduated",
            "usage_kind": "metered",
            "metric": "",
            "tier_count": "2",
            "tier-0-up_to": "10",
            "tier-0-unit_amount": "1",
            "tier-1-up_to": "5",
            "tier-1-unit_amount": "1",
        },
    )
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "Enter an ISO 4217 currency code such as EUR." in body
    assert "A metered price needs the metric it is billed on." in body
    assert "The last tier has no upper bound: leave it empty." in body
    assert count(Price) == 0


def test_edit_and_archive_price_with_confirmation(admin, seller_uid):
    plan = _product(admin, seller_uid)
    admin.post(
        f"/admin/catalog/{plan.public_id}/prices",
        data={
            "code": "flat",
            "nickname": "Platform",
            "currency": "EUR",
            "model": "flat",
            "unit_amount": "49",
        },
    )
    price = db.session.scalars(sa.select(Price)).one()
    form = admin.get(f"/admin/prices/{price.public_id}/edit").get_data(as_text=True)
    assert 'value="49"' in form
    data = {
        "code": "flat",
        "nickname": "Platform+",
        "currency": "EUR",
        "model": "flat",
        "unit_amount": "59",
    }
    assert admin.post(f"/admin/prices/{price.public_id}", data=data).status_code == 303
    db.session.expire_all()
    assert price.unit_amount == 59 and price.version == 1
    confirm = admin.get(f"/admin/prices/{price.public_id}/archive").get_data(as_text=True)
    assert "Archive price flat?" in confirm and 'id="confirm-button"' in confirm
    assert admin.post(f"/admin/prices/{price.public_id}/archive").status_code == 303
    db.session.expire_all()
    assert price.archived_at is not None
    assert admin.get(f"/admin/catalog/{plan.public_id}/archive").status_code == 200
    assert admin.post(f"/admin/catalog/{plan.public_id}/archive").status_code == 303
    assert "Archived" in admin.get(f"/admin/catalog/{plan.public_id}").get_data(as_text=True)
    assert admin.get("/admin/prices/nope/edit").status_code == 404
    assert admin.get("/admin/catalog/00000000-0000-0000-0000-000000000000").status_code == 404


def test_coupons_pages(admin, seller_uid):
    assert "No coupons yet." in admin.get("/admin/coupons").get_data(as_text=True)
    assert admin.get("/admin/coupons/new").status_code == 200
    bad = admin.post(
        "/admin/coupons",
        data={
            "seller": seller_uid,
            "code": "X",
            "name": "X",
            "kind": "amount",
            "amount_off_minor": "abc",
            "currency": "EUR",
            "duration": "repeating",
        },
    ).get_data(as_text=True)
    assert "Enter a positive amount such as 10.00." in bad
    assert "Enter how many invoices it discounts (1 to 120)." in bad
    assert count(Coupon) == 0
    good = admin.post(
        "/admin/coupons",
        data={
            "seller": seller_uid,
            "code": "TEN",
            "name": "Ten off",
            "kind": "amount",
            "amount_off_minor": "10,00",
            "currency": "EUR",
            "duration": "once",
        },
    )
    assert good.status_code == 303
    coupon = db.session.scalars(sa.select(Coupon)).one()
    assert coupon.amount_off_minor == 1000
    listed = admin.get("/admin/coupons?q=ten", headers=HX).get_data(as_text=True)
    assert "Ten off" in listed and "<html" not in listed
    assert "Archive coupon TEN?" in admin.get(
        f"/admin/coupons/{coupon.public_id}/archive"
    ).get_data(as_text=True)
    assert admin.post(f"/admin/coupons/{coupon.public_id}/archive").status_code == 303
    db.session.expire_all()
    assert coupon.archived_at is not None


def test_pages_are_for_admins_only(client, auth, world):
    auth.login(world.a.owner.email)
    assert client.get("/admin/catalog").status_code == 404
    assert client.get("/admin/coupons").status_code == 404


def test_tier_inputs_are_labelled_by_their_tier(admin, seller_uid):
    plan = _product(admin, seller_uid)
    form = admin.get(f"/admin/catalog/{plan.public_id}/prices/new?model=graduated").get_data(
        as_text=True
    )
    assert 'for="tier-1-flat_amount">Tier 2: Flat fee</label>' in form
    assert 'for="tier-0-unit_amount">Tier 1: Per unit</label>' in form


def test_a_link_naming_the_model_keeps_the_other_defaults(admin, seller_uid):
    plan = _product(admin, seller_uid)
    form = admin.get(
        f"/admin/catalog/{plan.public_id}/prices/new?model=graduated&usage_kind=metered"
    ).get_data(as_text=True)
    assert 'name="currency" maxlength="3" value="EUR"' in form
    assert 'name="interval_count" maxlength="3" value="1"' in form
    assert 'name="unit_code" maxlength="3" value="C62"' in form
    assert 'name="trial_days" maxlength="4" value="0"' in form
    assert 'name="tier-1-up_to"' in form and 'name="metric"' in form
