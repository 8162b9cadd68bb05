"""Contract tests of the tenant billing API: every operation's success, validation error,
authentication error and another tenant's id, against tenant-billing-api.txt."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.notifications.models import OutboxEmail
from portal.payments.models import PaymentMethod, PaymentMethodStatus
from portal.tenancy.models import BillingProfile
from tests.api.conftest import ApiClient
from tests.factories.invoices import make_invoice
from tests.factories.payments import PaymentMethodFactory

#: Every operation of the reference, with a path whose ids are filled per test.
OPERATIONS = [
    ("GET", "/billing-profile"),
    ("PUT", "/billing-profile"),
    ("GET", "/invoices"),
    ("GET", "/invoices/{invoice}"),
    ("GET", "/invoices/{invoice}/download"),
    ("GET", "/invoices/{invoice}/pdf"),
    ("POST", "/invoices/{invoice}/send"),
    ("GET", "/overview"),
    ("GET", "/payment-methods"),
    ("POST", "/payment-methods"),
    ("DELETE", "/payment-methods/{method}"),
    ("POST", "/payment-methods/{method}/default"),
    ("GET", "/payment-providers"),
    ("GET", "/payment-providers/stripe/config"),
    ("POST", "/payment-providers/stripe/confirm"),
    ("POST", "/payment-providers/stripe/setup"),
    ("GET", "/upcoming"),
]
PUBLIC = {("GET", "/payment-providers"), ("GET", "/payment-providers/stripe/config")}
WRITES = {
    ("PUT", "/billing-profile"),
    ("POST", "/invoices/{invoice}/send"),
    ("POST", "/payment-methods"),
    ("DELETE", "/payment-methods/{method}"),
    ("POST", "/payment-methods/{method}/default"),
    ("POST", "/payment-providers/stripe/confirm"),
    ("POST", "/payment-providers/stripe/setup"),
}

PROFILE = {
    "company_name": "Alpha Industries GmbH",
    "address_line1": "Hauptstraße 5",
    "postal_code": "20095",
    "city": "Hamburg",
    "country": "DE",
    "vat_id": "DE136695976",
    "billing_email": "ap@alpha.example",
    "cc_emails": ["cfo@alpha.example"],
    "einvoice_format": "xrechnung",
    "buyer_reference": "04011000-12345-34",
    "language": "de",
}


def _fill(path: str, tenant_world) -> str:
    return path.format(
        invoice=tenant_world.invoice.public_id, method=tenant_world.payment_method.public_id
    )


#: The self-service subscription operations beyond the reference (test_billing_subscriptions.py).
SUBSCRIPTION_OPERATIONS = {
    ("GET", "/subscriptions"),
    ("GET", "/subscriptions/{subscription_id}"),
    ("POST", "/subscriptions/{subscription_id}/preview"),
    ("PATCH", "/subscriptions/{subscription_id}"),
    ("POST", "/subscriptions/{subscription_id}/cancel"),
    ("POST", "/subscriptions/{subscription_id}/resume"),
}


def test_reference_lists_seventeen_operations(app):
    spec = app.test_client().get("/api/v1/billing/openapi.json").get_json()
    operations = {
        (m.upper(), p.removeprefix("/api/v1/billing"))
        for p, ms in spec["paths"].items()
        for m in ms
    }
    reference = {
        (m, p.replace("{invoice}", "{invoice_id}").replace("{method}", "{method_id}"))
        for m, p in OPERATIONS
    }
    reference = {(m, p.replace("/stripe/", "/{slug}/")) for m, p in reference}
    assert len(OPERATIONS) == 17
    assert operations == reference | SUBSCRIPTION_OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_without_or_with_a_bad_token_is_401(client, world, method, path):
    url = "/api/v1/billing" + _fill(path, world.a)
    for headers in ({}, {"Authorization": "Bearer tbp_not-a-token"}, {"Authorization": "Basic x"}):
        response = client.open(url, method=method, headers=headers, json={})
        if (method, path) in PUBLIC:
            assert response.status_code in (200, 404)  # no provider configured: 404
            continue
        assert response.status_code == 401, (method, path, headers)
        body = response.get_json()
        assert body["detail"][0]["loc"] == ["header", "authorization"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), sorted(WRITES))
def test_a_read_only_token_cannot_write(reader, world, method, path, session):
    response = reader.call(method, _fill(path, world.a), json={})
    assert response.status_code == 403
    assert response.get_json()["detail"][0]["type"] == "insufficient_scope"


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in OPERATIONS if "{" in p])
def test_another_tenants_object_is_404(api, world, method, path, session):
    before = session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))
    response = api.call(method, _fill(path, world.b), json={})
    assert response.status_code == 404
    detail = response.get_json()["detail"][0]
    assert detail["type"] == "not_found"
    assert detail["loc"][0] == "path"
    session.expire_all()
    assert world.b.payment_method.status == PaymentMethodStatus.ACTIVE
    assert world.b.invoice.status == InvoiceStatus.FINALIZED
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == before


@pytest.mark.parametrize(
    "bad_id", ["nope", "0", "5f0c6a8e-3d43-4c5b-9a2e-1f7d2b6c9e10", "%00", "1" * 300]
)
def test_malformed_or_unknown_ids_are_404(api, bad_id):
    assert api.get(f"/invoices/{bad_id}").status_code == 404
    assert api.post(f"/payment-methods/{bad_id}/default").status_code == 404


def test_meta_echoes_the_request_id_and_version(api):
    response = api.get("/overview", headers={"X-Request-Id": "req-42.abc"})
    assert response.get_json()["meta"] == {"request_id": "req-42.abc", "api_version": "v1"}
    made = api.get("/overview", headers={"X-Request-Id": "bad id with spaces"})
    assert made.get_json()["meta"]["request_id"] != "bad id with spaces"
    assert len(made.get_json()["meta"]["request_id"]) == 32


def test_unknown_path_and_wrong_method_answer_in_the_error_shape(api):
    missing = api.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.get_json()["detail"][0]["type"] == "not_found"
    wrong = api.call("PATCH", "/billing-profile")
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["Allow"]
    assert wrong.get_json()["detail"]


# --- Billing profile -----------------------------------------------------------------------


def test_billing_profile_is_null_until_created_then_upserted(api, world, session):
    session.delete(
        session.scalars(sa.select(BillingProfile).filter_by(tenant_id=world.a.tenant.id)).one()
    )
    session.commit()
    assert api.get("/billing-profile").get_json()["data"] is None

    created = api.put("/billing-profile", json=PROFILE)
    assert created.status_code == 200, created.get_json()
    data = created.get_json()["data"]
    assert data["vat_id"] == "DE136695976"
    assert data["einvoice_format"] == "xrechnung"
    assert data["cc_emails"] == ["cfo@alpha.example"]
    assert data["currency"] == world.a.tenant.currency

    updated = api.put("/billing-profile", json={**PROFILE, "city": "Berlin", "cc_emails": []})
    assert updated.get_json()["data"]["city"] == "Berlin"
    assert api.get("/billing-profile").get_json()["data"]["cc_emails"] == []
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(BillingProfile)
            .filter_by(tenant_id=world.a.tenant.id)
        )
        == 1
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"vat_id": "DE136695977"}, "vat_id"),
        ({"country": "XX"}, "country"),
        ({"billing_email": "not-an-address"}, "billing_email"),
        ({"cc_emails": ["ok@example.com", "nope"]}, "cc_emails"),
        ({"tax_exempt": True}, "tax_exemption_reason"),
        ({"company_name": ""}, "company_name"),
        ({"company_name": 5}, "company_name"),
        ({"einvoice_format": "pdf-ish"}, "einvoice_format"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"buyer_reference": "x" * 2000}, "buyer_reference"),
    ],
)
def test_invalid_profile_is_422_and_writes_nothing(api, world, session, change, field):
    before = api.get("/billing-profile").get_json()["data"]
    response = api.put("/billing-profile", json={**PROFILE, **change})
    assert response.status_code == 422
    locs = [entry["loc"] for entry in response.get_json()["detail"]]
    assert ["body", field] in locs, locs
    assert all(entry["msg"] for entry in response.get_json()["detail"])
    assert api.get("/billing-profile").get_json()["data"] == before


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ("not json", {"Content-Type": "application/json"}),
        ('{"company_name": "x"', {"Content-Type": "application/json"}),
        ("company_name=x", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("[]", {"Content-Type": "application/json"}),
        ("null", {"Content-Type": "application/json"}),
    ],
)
def test_bodies_that_are_not_a_json_object_are_422(api, body, headers):
    response = api.put("/billing-profile", data=body, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][0] == "body"


# --- Invoices ------------------------------------------------------------------------------


def _many_invoices(tenant, count: int) -> list[Invoice]:
    invoices = []
    for month in range(1, count + 1):
        start = dt.date(2025, month, 1) if month <= 12 else dt.date(2024, month - 12, 1)
        end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        invoices.append(make_invoice(tenant, period_start=start, period_end=end))
    return invoices


def test_invoice_list_pages_are_stable_and_complete(api, world, session):
    _many_invoices(world.a.tenant, 6)
    session.commit()
    first = api.get("/invoices?page=1&page_size=3").get_json()
    assert first["pagination"] == {"page": 1, "page_size": 3, "total": 7, "pages": 3}
    ids = [inv["id"] for inv in first["data"]]
    for page in (2, 3):
        ids += [
            inv["id"] for inv in api.get(f"/invoices?page={page}&page_size=3").get_json()["data"]
        ]
    assert len(ids) == len(set(ids)) == 7
    assert world.b.invoice.public_id.hex not in {i.replace("-", "") for i in ids}
    past = api.get("/invoices?page=9&page_size=3").get_json()
    assert past["data"] == [] and past["pagination"]["page"] == 9
    dates = [inv["issue_date"] for inv in first["data"]]
    assert dates == sorted(dates, reverse=True)
    assert first["data"][0]["lines"] is None  # detail only


def test_invoice_list_filters_by_status(api, world, session):
    paid = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 8, 1), period_end=dt.date(2026, 8, 31)
    )
    from portal.invoices.lifecycle import mark_paid

    mark_paid(session, paid)
    session.commit()
    statuses = {
        status: {i["id"] for i in api.get(f"/invoices?status={status}").get_json()["data"]}
        for status in ("all", "open", "paid")
    }
    assert statuses["paid"] == {str(paid.public_id)}
    assert statuses["open"] == {str(world.a.invoice.public_id)}
    assert statuses["all"] == statuses["paid"] | statuses["open"]


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=abc",
        "page_size=0",
        "page_size=101",
        "status=bogus",
        "status=draft",
        "page=1&page=2",
    ],
)
def test_invoice_list_bad_query_is_422(api, query):
    response = api.get(f"/invoices?{query}")
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["loc"][0] == "query"


def test_invoice_detail_has_lines_breakdown_and_the_database_totals(api, world):
    invoice = world.a.invoice
    data = api.get(f"/invoices/{invoice.public_id}").get_json()["data"]
    assert data["number"] == invoice.number
    assert data["amount_due_minor"] == invoice.amount_due_minor
    assert data["tax_minor"] == invoice.tax_minor
    assert [line["description"] for line in data["lines"]] == ["Platform", "Seats"]
    assert data["lines"][1]["quantity"] == "3.000000" or data["lines"][1]["quantity"].startswith(
        "3"
    )
    assert sum(line["net_amount_minor"] for line in data["lines"]) == data["lines_total_minor"]
    assert data["vat_breakdown"] == [
        {
            "category": "S",
            "rate": data["vat_breakdown"][0]["rate"],
            "taxable_minor": invoice.tax_exclusive_minor,
            "tax_minor": invoice.tax_minor,
            "exemption_reason": None,
        }
    ]
    assert data["pdf_url"].endswith(f"/invoices/{invoice.public_id}/pdf")


def test_send_moves_finalized_to_sent_and_refuses_others(api, world, session, mailbox):
    invoice = world.a.invoice
    response = api.post(f"/invoices/{invoice.public_id}/send")
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["status"] == "sent"
    assert data["to"]
    session.refresh(invoice)
    assert invoice.status == InvoiceStatus.SENT

    from portal.invoices.lifecycle import mark_paid

    mark_paid(session, invoice)
    session.commit()
    refused = api.post(f"/invoices/{invoice.public_id}/send")
    assert refused.status_code == 422
    assert refused.get_json()["detail"][0]["type"] == "not_sendable.closed"


# --- Payment methods -----------------------------------------------------------------------


def test_payment_methods_list_default_and_delete(api, world, session):
    second = PaymentMethodFactory(tenant=world.a.tenant, last4="1881", brand="visa")
    session.commit()
    listed = api.get("/payment-methods").get_json()["data"]
    assert [m["is_default"] for m in listed] == [True, False]
    assert {m["id"] for m in listed} == {
        str(world.a.payment_method.public_id),
        str(second.public_id),
    }

    made = api.post(f"/payment-methods/{second.public_id}/default")
    assert made.status_code == 200
    assert made.get_json()["data"]["is_default"] is True
    session.expire_all()
    assert world.a.payment_method.is_default is False

    removed = api.delete(f"/payment-methods/{world.a.payment_method.public_id}")
    assert removed.status_code == 200
    assert removed.get_json()["data"]["status"] == "inactive"
    again = api.delete(f"/payment-methods/{world.a.payment_method.public_id}")
    assert again.status_code == 422
    refused = api.post(f"/payment-methods/{world.a.payment_method.public_id}/default")
    assert refused.status_code == 422
    session.expire_all()
    assert session.get(PaymentMethod, second.id).is_default is True


# --- Overview and upcoming: the page's figures ---------------------------------------------


@pytest.fixture
def one_instant(monkeypatch):
    """The page and the API read the clock at one instant: the projection scales usage by
    the elapsed seconds of the period, so two requests a second apart project differently."""
    from portal.db import utcnow

    now = utcnow()
    for module in (
        "portal.web.overview.views",
        "portal.web.upcoming.views",
        "portal.api.billing.views",
    ):
        monkeypatch.setattr(f"{module}.utcnow", lambda: now)
    return now


def test_overview_json_equals_the_overview_page(api, client, auth, world, session, one_instant):
    from tests.factories.catalog import subscribe_this_month

    subscribe_this_month(session, world.a.tenant)
    overdue = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 5, 1), period_end=dt.date(2026, 5, 31)
    )
    session.commit()
    data = api.get("/overview").get_json()["data"]
    assert data["open_count"] == 2
    assert data["amount_open_minor"] == world.a.invoice.amount_due_minor + overdue.amount_due_minor
    assert data["overdue_count"] >= 1
    assert len(data["monthly_spend"]) == 12
    assert data["upcoming"]["projected_amount_due_minor"] > 0
    assert data["default_payment_method"]["last4"] == "4242"

    auth.login(world.a.owner.email)
    page = client.get("/").get_data(as_text=True)
    from portal.domain.money import Money
    from portal.web.formatting import money

    with client.application.test_request_context():
        expected = [
            money(Money(data["amount_open_minor"], data["currency"])),
            money(Money(data["amount_overdue_minor"], data["currency"])),
            money(Money(data["upcoming"]["projected_amount_due_minor"], data["currency"])),
        ]
    for text in expected:
        assert text in page, text
    for invoice in data["recent_invoices"]:
        assert invoice["number"] in page


def test_upcoming_json_equals_the_upcoming_page(api, client, auth, world, session, one_instant):
    assert api.get("/upcoming").get_json()["data"] is None
    from tests.factories.catalog import subscribe_this_month

    subscribe_this_month(session, world.a.tenant)
    session.commit()
    data = api.get("/upcoming").get_json()["data"]
    assert data["projected"]["amount_due_minor"] >= data["to_date"]["amount_due_minor"]
    assert (
        sum(line["net_amount_minor"] for line in data["lines"])
        == data["projected"]["lines_total_minor"]
    )
    assert data["quotas"][0]["metric"] == "api_calls"

    auth.login(world.a.owner.email)
    page = client.get("/upcoming").get_data(as_text=True)
    from portal.domain.money import Money
    from portal.web.formatting import money

    with client.application.test_request_context():
        for minor in (data["projected"]["amount_due_minor"], data["to_date"]["amount_due_minor"]):
            assert money(Money(minor, data["currency"])) in page
        for line in data["lines"]:
            assert money(Money(line["net_amount_minor"], data["currency"])) in page


def test_every_answer_validates_against_its_declared_model(api, world, session):
    """The envelopes the views produce parse back into the models the OpenAPI names."""
    from portal.api.billing.views import api as billing

    ops = {(op.method, op.path): op for op in billing.operations}
    checks = [
        ("GET", "/billing-profile", "/billing-profile"),
        ("GET", "/invoices", "/invoices"),
        ("GET", "/invoices/<invoice_id>", f"/invoices/{world.a.invoice.public_id}"),
        ("GET", "/overview", "/overview"),
        ("GET", "/payment-methods", "/payment-methods"),
        ("GET", "/upcoming", "/upcoming"),
    ]
    for method, rule, url in checks:
        response = api.call(method, url)
        assert response.status_code == 200
        ops[(method, rule)].response.model_validate(response.get_json())


def test_api_client_fixture_is_tenant_a(api: ApiClient, world):
    data = api.get("/invoices").get_json()["data"]
    assert [i["id"] for i in data] == [str(world.a.invoice.public_id)]


# --- Documents -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "media_type", "magic"),
    [
        ("pdf", "application/pdf", b"%PDF"),
        ("ubl", "application/xml", b"<?xml"),
        ("xrechnung", "application/xml", b"<?xml"),
        ("cii", "application/xml", b"<?xml"),
        ("facturx", "application/pdf", b"%PDF"),
        ("zugferd", "application/pdf", b"%PDF"),
    ],
)
def test_download_streams_each_format_and_the_same_bytes_twice(
    api, world, session, fmt, media_type, magic
):
    profile = session.scalars(
        sa.select(BillingProfile).filter_by(tenant_id=world.a.tenant.id)
    ).one()
    profile.vat_id = "DE136695976"  # Peppol needs an electronic address of the buyer
    profile.buyer_reference = "04011000-12345-34"  # XRechnung needs the Leitweg-ID
    world.a.tenant.seller.phone = "+49 40 1234567"  # and a seller contact
    invoice = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    session.commit()
    url = f"/invoices/{invoice.public_id}/download?format={fmt}"
    first = api.get(url)
    assert first.status_code == 200, first.get_data(as_text=True)[:300]
    assert first.mimetype == media_type
    assert first.data.startswith(magic)
    assert "attachment" in first.headers["Content-Disposition"]
    assert invoice.number in first.headers["Content-Disposition"]
    assert api.get(url).data == first.data  # issued documents are stored, never re-rendered


def test_download_of_an_unknown_format_lists_the_supported_ones(api, world):
    response = api.get(f"/invoices/{world.a.invoice.public_id}/download?format=docx")
    assert response.status_code == 422
    detail = response.get_json()["detail"][0]
    assert detail["loc"] == ["query", "format"]
    assert set(detail["supported"]) >= {"pdf", "ubl", "xrechnung", "cii", "zugferd", "facturx"}


def test_xrechnung_without_a_buyer_reference_is_a_clear_422(api, world, session):
    assert world.a.invoice.buyer_reference is None
    response = api.get(f"/invoices/{world.a.invoice.public_id}/download?format=xrechnung")
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["type"] == "not_available"


def test_pdf_renders_or_redirects_to_the_pregenerated_document(api, world, session):
    url = f"/invoices/{world.a.invoice.public_id}/pdf"
    rendered = api.get(url)
    assert rendered.status_code == 200 and rendered.data.startswith(b"%PDF")
    world.a.invoice.pdf_url = "https://files.example/invoices/a.pdf"
    session.commit()
    redirected = api.get(url)
    assert redirected.status_code == 302
    assert redirected.headers["Location"] == "https://files.example/invoices/a.pdf"


def test_rate_limit_is_per_token_and_answers_429_in_the_error_shape(app_config, api, reader):
    from portal import create_app

    app_config.update(RATELIMIT_ENABLED=True, API_RATE_LIMIT="2 per minute")
    limited_client = create_app(app_config).test_client()
    api, reader = ApiClient(limited_client, api.token), ApiClient(limited_client, reader.token)
    assert api.get("/overview").status_code == 200
    assert api.get("/overview").status_code == 200
    limited = api.get("/overview")
    assert limited.status_code == 429
    assert limited.get_json()["detail"][0]["type"] == "too_many_requests"
    assert int(limited.headers["Retry-After"]) > 0
    assert reader.get("/overview").status_code == 200  # another token has its own budget
