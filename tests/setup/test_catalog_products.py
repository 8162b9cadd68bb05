"""Products and prices: every model, validation, versions of invoiced prices, archiving."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.catalog.models import Plan, Price, PriceModel, PriceTier, UsageKind
from portal.catalog.products import (
    CatalogInvalid,
    archive_price,
    archive_product,
    create_price,
    create_product,
    price_available,
    price_by_uid,
    update_price,
    update_product,
)
from portal.documents.formats import _render, get_format, render_document
from portal.extensions import db
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import InvoiceLine
from tests.documents.conftest_einvoice import einvoice_seller
from tests.factories.tenancy import SellerFactory
from tests.setup.catalog_support import ACTOR, D, audit_actions, company, count, subscribe, use


@pytest.fixture
def app_config(app_config):
    app_config["EINVOICE_VALIDATOR"] = "off"
    return app_config


@pytest.fixture
def seller(app):
    return SellerFactory()


@pytest.fixture
def product(seller):
    return create_product(db.session, seller, {"code": "cloud", "name": "Cloud Platform"}, ACTOR)


GRADUATED = {
    "code": "api",
    "nickname": "API calls",
    "currency": "EUR",
    "model": "graduated",
    "usage_kind": "metered",
    "metric": "api_calls",
    "unit_code": "C62",
    "tiers": [
        {"up_to": "1000", "unit_amount": "0"},
        {"up_to": "10000", "unit_amount": "0.002"},
        {"up_to": None, "unit_amount": "0.001", "flat_amount": "1.50"},
    ],
}


def _price(**fields):
    return {"code": "p", "nickname": "Thing", "currency": "EUR", **fields}


@pytest.mark.parametrize(
    "fields",
    [
        {"model": "flat", "unit_amount": "49.00"},
        {"model": "per_unit", "unit_amount": "12.00", "trial_days": 14},
        {
            "model": "package",
            "unit_amount": "10",
            "package_size": "100",
            "usage_kind": "metered",
            "metric": "gb",
        },
        {"model": "volume", "tiers": [{"up_to": "10", "unit_amount": "5"}, {"unit_amount": "4"}]},
        {
            "model": "per_unit",
            "unit_amount": "99",
            "interval": "year",
            "interval_count": 1,
            "tax_treatment": "goods",
            "vat_exemption_reason": "Export",
            "self_serve": True,
        },
    ],
)
def test_a_price_in_every_model(product, fields):
    price = create_price(db.session, product, _price(**fields), ACTOR)
    assert price.version == 1 and price.replaces_id is None and price.archived_at is None
    assert price.model == PriceModel(fields["model"])
    assert price_available(price)
    assert audit_actions()[-1] == "price.create"


def test_graduated_metered_price_keeps_its_tiers_in_order(product):
    price = create_price(db.session, product, GRADUATED, ACTOR)
    assert price.usage_kind == UsageKind.METERED and price.metric == "api_calls"
    assert [(t.position, t.up_to, t.unit_amount, t.flat_amount) for t in price.tiers] == [
        (0, D(1000), D(0), D(0)),
        (1, D(10000), D("0.002"), D(0)),
        (2, None, D("0.001"), D("1.50")),
    ]
    assert price.unit_amount is None and price.package_size is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"model": "flat", "unit_amount": "1", "currency": "EUX"}, "currency"),
        ({"model": "flat", "unit_amount": "1", "currency": "eur\x00"}, "currency"),
        ({"model": "flat", "unit_amount": "1", "currency": 978}, "currency"),
        ({"model": "tiered", "unit_amount": "1"}, "model"),
        ({"model": "flat"}, "unit_amount"),
        ({"model": "flat", "unit_amount": "-1"}, "unit_amount"),
        ({"model": "flat", "unit_amount": "1e30"}, "unit_amount"),
        ({"model": "flat", "unit_amount": 10**30}, "unit_amount"),
        ({"model": "flat", "unit_amount": "NaN"}, "unit_amount"),
        ({"model": "flat", "unit_amount": "0.00000000001"}, "unit_amount"),
        (
            {"model": "flat", "unit_amount": "1", "usage_kind": "metered", "metric": "x"},
            "usage_kind",
        ),
        ({"model": "per_unit", "unit_amount": "1", "usage_kind": "metered"}, "metric"),
        (
            {"model": "per_unit", "unit_amount": "1", "usage_kind": "metered", "metric": "A B"},
            "metric",
        ),
        ({"model": "package", "unit_amount": "1"}, "package_size"),
        ({"model": "package", "unit_amount": "1", "package_size": "0"}, "package_size"),
        ({"model": "graduated"}, "tiers"),
        ({"model": "graduated", "tiers": []}, "tiers"),
        ({"model": "graduated", "tiers": "1-10"}, "tiers"),
        (
            {
                "model": "graduated",
                "tiers": [
                    {"up_to": "10", "unit_amount": "1"},
                    {"up_to": "5", "unit_amount": "1"},
                    {"unit_amount": "1"},
                ],
            },
            "tiers.1.up_to",
        ),
        ({"model": "volume", "tiers": [{"up_to": "10", "unit_amount": "1"}]}, "tiers.0.up_to"),
        (
            {"model": "volume", "tiers": [{"unit_amount": "1"}, {"unit_amount": "2"}]},
            "tiers.0.up_to",
        ),
        ({"model": "volume", "tiers": [{"unit_amount": "-2"}]}, "tiers.0.unit_amount"),
        ({"model": "volume", "tiers": [{"unit_amount": "1", "colour": "red"}]}, "tiers.0.colour"),
        ({"model": "flat", "unit_amount": "1", "interval": "week"}, "interval"),
        ({"model": "flat", "unit_amount": "1", "interval_count": 0}, "interval_count"),
        (
            {"model": "flat", "unit_amount": "1", "interval": "year", "interval_count": 9},
            "interval_count",
        ),
        ({"model": "flat", "unit_amount": "1", "trial_days": -1}, "trial_days"),
        ({"model": "flat", "unit_amount": "1", "trial_days": 1.5}, "trial_days"),
        ({"model": "flat", "unit_amount": "1", "unit_code": "HOURS"}, "unit_code"),
        ({"model": "flat", "unit_amount": "1", "tax_treatment": "food"}, "tax_treatment"),
        (
            {"model": "flat", "unit_amount": "1", "vat_exemption_reason": "a\x00b"},
            "vat_exemption_reason",
        ),
        ({"model": "flat", "unit_amount": "1", "self_serve": "maybe"}, "self_serve"),
        ({"model": "flat", "unit_amount": "1", "code": ""}, "code"),
        ({"model": "flat", "unit_amount": "1", "code": "a b"}, "code"),
        ({"model": "flat", "unit_amount": "1", "code": "x" * 65}, "code"),
        ({"model": "flat", "unit_amount": "1", "nickname": "\x00"}, "nickname"),
        ({"model": "flat", "unit_amount": "1", "surprise": 1}, "surprise"),
    ],
)
def test_bad_prices_are_refused_field_by_field_and_write_nothing(product, fields, field):
    before = (count(Price), count(PriceTier), audit_actions())
    with pytest.raises(CatalogInvalid) as refused:
        create_price(db.session, product, _price(**fields), ACTOR)
    assert field in refused.value.errors, refused.value.errors
    assert (count(Price), count(PriceTier), audit_actions()) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"code": "", "name": "x"}, "code"),
        ({"code": "ok", "name": ""}, "name"),
        ({"code": "ok", "name": "n\x00"}, "name"),
        ({"code": "ok", "name": "x" * 201}, "name"),
        ({"code": "ok", "name": "x", "colour": "red"}, "colour"),
        ({"code": "cloud", "name": "Taken"}, "code"),
    ],
)
def test_bad_products_are_refused(product, seller, fields, field):
    before = count(Plan)
    with pytest.raises(CatalogInvalid) as refused:
        create_product(db.session, seller, fields, ACTOR)
    assert field in refused.value.errors
    assert count(Plan) == before


def test_product_update_and_archive(product, seller):
    other = create_product(db.session, seller, {"code": "other", "name": "Other"}, ACTOR)
    with pytest.raises(CatalogInvalid) as refused:
        update_product(db.session, other, {"code": "cloud"}, ACTOR)
    assert "code" in refused.value.errors
    update_product(
        db.session, product, {"name": "Cloud Platform 2", "description": "Hosting"}, ACTOR
    )
    assert (product.code, product.name, product.description) == (
        "cloud",
        "Cloud Platform 2",
        "Hosting",
    )
    price = create_price(db.session, product, _price(model="flat", unit_amount="1"), ACTOR)
    archive_product(db.session, product, ACTOR)
    archive_product(db.session, product, ACTOR)  # again: nothing more happens
    assert product.archived_at is not None and not price_available(price)
    with pytest.raises(CatalogInvalid):
        create_price(db.session, product, _price(code="q", model="flat", unit_amount="1"), ACTOR)
    assert audit_actions().count("product.archive") == 1


def test_a_price_never_invoiced_is_edited_in_place(product, seller):
    price = create_price(db.session, product, GRADUATED, ACTOR)
    tenant = company(seller)
    subscribe(tenant, [(price, 0)])
    use(tenant, "api_calls", 2000, "k0")
    [draft] = generate_invoices(db.session, [tenant], "2026-10")  # a draft: not issued
    tiers = [{"up_to": "500", "unit_amount": "0"}, {"unit_amount": "0.003"}]
    same = update_price(db.session, price, {"tiers": tiers, "nickname": "Calls"}, ACTOR)
    assert same is price and price.version == 1 and price.code == "api"
    assert [(t.up_to, t.unit_amount) for t in price.tiers] == [(D(500), D(0)), (None, D("0.003"))]
    assert count(Price) == 1
    assert audit_actions()[-1] == "price.update"
    with pytest.raises(CatalogInvalid) as refused:  # its subscription bills in EUR
        update_price(db.session, price, {"currency": "USD"}, ACTOR)
    assert "currency" in refused.value.errors


def test_bad_edit_changes_nothing(product):
    price = create_price(db.session, product, GRADUATED, ACTOR)
    with pytest.raises(CatalogInvalid) as refused:
        update_price(db.session, price, {"tiers": [{"up_to": "5", "unit_amount": "1"}]}, ACTOR)
    assert "tiers.0.up_to" in refused.value.errors
    db.session.expire_all()
    assert len(price.tiers) == 3 and price.version == 1


def _render_fresh(invoice) -> dict[str, bytes]:
    """Every format rendered now (not the stored copy)."""
    return {
        fmt: _render(db.session, invoice, get_format(fmt), "en" if fmt == "pdf" else "")
        for fmt in ("pdf", "ubl", "cii", "facturx")
    }


def _lines(invoice) -> list[tuple]:
    return [
        (li.position, li.description, li.quantity, li.unit_price, li.net_amount_minor, li.price_id)
        for li in db.session.scalars(
            sa.select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice.id)
            .order_by(InvoiceLine.position)
        )
    ]


def test_editing_an_invoiced_price_makes_a_version_and_leaves_the_invoice_alone(app):
    seller = einvoice_seller()
    product = create_product(db.session, seller, {"code": "cloud", "name": "Cloud"}, ACTOR)
    api = create_price(db.session, product, GRADUATED, ACTOR)
    seats = create_price(
        db.session, product, _price(code="seats", model="per_unit", unit_amount="12.00"), ACTOR
    )
    tenant = company(seller, vat_id="DE136695976")
    subscription = subscribe(tenant, [(api, 0), (seats, 3)])
    use(tenant, "api_calls", 15000, "k1")
    [invoice] = generate_invoices(db.session, [tenant], "2026-10")
    finalize_invoice(db.session, invoice, issue_date=dt.date(2026, 11, 1))
    db.session.commit()
    stored = {fmt: render_document(db.session, invoice, fmt).content for fmt in ("pdf", "ubl")}
    before_lines, before_docs = _lines(invoice), _render_fresh(invoice)
    assert b"API calls" in before_docs["ubl"]

    new = update_price(
        db.session,
        api,
        {
            "nickname": "API requests",
            "tiers": [{"up_to": "100", "unit_amount": "0"}, {"unit_amount": "0.01"}],
        },
        ACTOR,
    )
    db.session.commit()

    assert new is not api
    assert (new.version, new.replaces_id, new.code) == (2, api.id, "api")
    assert (api.code, api.version) == ("api@v1", 1) and api.archived_at is not None
    assert not price_available(api) and price_available(new)
    assert [t.up_to for t in api.tiers] == [D(1000), D(10000), None]  # the old terms stay
    assert audit_actions()[-1] == "price.version"
    # The subscription keeps the old version until it is changed.
    assert {item.price_id for item in subscription.items} == {api.id, seats.id}
    db.session.expire_all()
    assert _lines(invoice) == before_lines
    assert _render_fresh(invoice) == before_docs
    assert {fmt: render_document(db.session, invoice, fmt).content for fmt in stored} == stored
    # An archived version is not edited; its successor is.
    with pytest.raises(CatalogInvalid):
        update_price(db.session, api, {"nickname": "x"}, ACTOR)
    again = update_price(db.session, new, {"nickname": "API requests v3"}, ACTOR)
    assert again is new  # version 2 was never invoiced: edited in place
    assert price_by_uid(db.session, new.public_id) is new
    assert price_by_uid(db.session, "not-a-uuid") is None


def test_archiving_a_price_keeps_existing_subscriptions_billing(product, seller):
    price = create_price(db.session, product, _price(model="flat", unit_amount="49"), ACTOR)
    tenant = company(seller)
    subscribe(tenant, [(price, 1)])
    archive_price(db.session, price, ACTOR)
    assert not price_available(price)
    [invoice] = generate_invoices(db.session, [tenant], "2026-10")
    assert invoice.lines_total_minor == 4900
