"""Contract tests of the account API: every operation, its answer and its error codes."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from portal.api.accounts.schemas import (
    AccountBillingDetailsResponse,
    BillingInfoResponse,
    ConsumptionListResponse,
    ConsumptionResponse,
    GenericResponse,
    InvoicePublicLinkResponse,
    LocationTaxResponse,
    MovementListResponse,
    RefundListResponse,
    RefundResponse,
)
from portal.extensions import db
from portal.invoices.lifecycle import mark_paid
from portal.payments.models import Refund
from portal.tenancy.models import TokenKind
from portal.tenancy.services import create_api_token
from portal.usage.models import UsageRecord
from tests.api_accounts.conftest import PREFIX, admin_token
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import SellerFactory, TenantFactory

#: Every operation as (method, path template, body) with {invoice} filled in per test.
OPERATIONS = [
    ("GET", "/invoices/{invoice}/public-link", None),
    ("GET", "/billing-details", None),
    ("GET", "/consumptions", None),
    ("POST", "/consumptions", "consumption"),
    ("GET", "/movements", None),
    ("GET", "/refunds", None),
    ("POST", "/refunds", "refund"),
    ("GET", "/billing-info", None),
    ("PUT", "/billing-info", "profile"),
    ("GET", "/location-tax?country=DE", None),
]
WRITES = {("POST", "/consumptions"), ("POST", "/refunds"), ("PUT", "/billing-info")}


def _body(kind: str | None, world) -> dict | None:
    if kind == "consumption":
        return {
            "metric": "api_calls",
            "quantity": "12.5",
            "occurredAt": "2026-10-03T10:00:00Z",
            "idempotencyKey": "k-1",
        }
    if kind == "refund":
        return {"invoiceId": str(world.a.invoice.public_id), "amountMinor": 100}
    if kind == "profile":
        return {
            "companyName": "Alpha Industries GmbH",
            "addressLine1": "Hauptstr. 1",
            "postalCode": "10115",
            "city": "Berlin",
            "country": "DE",
            "billingEmail": "ap@alpha.example",
            "ccEmails": ["cfo@alpha.example"],
            "language": "de",
        }
    return None


def _generic(response, status: int) -> GenericResponse:
    """The error as a GenericResponseDTO with ``status`` both in the header and the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = GenericResponse.model_validate(response.get_json())
    assert error.status == status
    assert error.request_id
    return error


def _path(template: str, world) -> str:
    return template.format(invoice=world.a.invoice.public_id)


# --- Authentication and authorization (every operation) ------------------------------------


@pytest.mark.parametrize(("method", "template", "body"), OPERATIONS)
def test_every_operation_needs_an_admin_token(accounts, world, method, template, body):
    path = _path(template, world)
    payload = _body(body, world)
    missing = accounts.call(method, path, token="", json=payload)
    assert _generic(missing, 401).code == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    _, tenant_secret = create_api_token(
        db.session,
        kind=TokenKind.TENANT,
        tenant=world.a.tenant,
        name="tenant",
        scopes=["billing:read", "billing:write"],
    )
    db.session.commit()
    # A tenant token never opens the admin surface, even for its own account.
    _generic(accounts.call(method, path, token=tenant_secret, json=payload), 401)
    _generic(accounts.call(method, path, token="tbp_unknown", json=payload), 401)
    if (method, template.split("?")[0]) in WRITES:
        read_only = admin_token("admin:read")
        assert _generic(accounts.call(method, path, token=read_only, json=payload), 403).code == (
            "forbidden"
        )


@pytest.mark.parametrize(("method", "template", "body"), OPERATIONS)
def test_another_sellers_account_is_404(accounts, world, method, template, body):
    path = _path(template, world)
    payload = _body(body, world)
    other_seller = SellerFactory()
    stranger = TenantFactory(seller=other_seller)
    db.session.commit()
    # Tenant A under another seller, another seller's tenant under A's seller, garbage ids.
    for org_id, account_id in (
        (str(other_seller.public_id), accounts.account_id),
        (accounts.org_id, str(stranger.public_id)),
        ("not-an-id", accounts.account_id),
        (accounts.org_id, "not-an-id"),
    ):
        response = accounts.call(method, path, json=payload, org_id=org_id, account_id=account_id)
        assert _generic(response, 404).code == "not_found"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(UsageRecord)) == 0


def test_unknown_path_and_method_keep_the_error_shape(accounts, client):
    _generic(client.get(f"{PREFIX}/x/nothing-here"), 404)
    response = accounts.call("DELETE", "/movements")
    _generic(response, 405)


def test_server_errors_are_500_with_a_correlation_id(accounts, monkeypatch):
    import portal.api.accounts.views as views

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(views, "balance", broken)
    error = _generic(accounts.get("/movements"), 500)
    assert error.code == "internal_error"
    assert error.request_id in error.message
    assert "fire" not in error.message


# --- Invoices ------------------------------------------------------------------------------


def test_public_link_opens_the_invoice(accounts, client, world):
    response = accounts.get(f"/invoices/{world.a.invoice.public_id}/public-link")
    assert response.status_code == 200
    link = InvoicePublicLinkResponse.model_validate(response.get_json())
    assert response.get_json()["invoiceNumber"] == world.a.invoice.number
    assert link.invoice_id == str(world.a.invoice.public_id)
    assert link.url.startswith("http://localhost/i/")
    assert link.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(days=59)
    again = accounts.get(f"/invoices/{world.a.invoice.public_id}/public-link").get_json()
    assert again["url"] == link.url  # reused, not a new row per call
    page = client.get(urlsplit(link.url).path)
    assert page.status_code == 200 and world.a.invoice.number in page.get_data(as_text=True)


def test_public_link_of_other_or_draft_invoices_is_404(accounts, world):
    error = _generic(accounts.get(f"/invoices/{world.b.invoice.public_id}/public-link"), 404)
    assert error.errors[0].field == "path.invoiceId"
    draft = make_invoice(
        world.a.tenant,
        finalize=False,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
    )
    db.session.commit()
    _generic(accounts.get(f"/invoices/{draft.public_id}/public-link"), 404)
    _generic(accounts.get("/invoices/not-a-uuid/public-link"), 404)


def test_billing_details(accounts, world):
    response = accounts.get("/billing-details")
    assert response.status_code == 200
    details = AccountBillingDetailsResponse.model_validate(response.get_json())
    assert details.account_id == accounts.account_id
    assert details.currency == world.a.tenant.currency
    # The world's tenant has no subscription: no next billing date, but its balance.
    assert details.next_billing_date is None
    assert details.balance_minor == world.a.invoice.amount_due_minor


def test_billing_details_with_a_subscription(accounts, world):
    from portal.catalog.models import CollectionMethod, Subscription

    db.session.add(
        Subscription(
            tenant_id=world.a.tenant.id,
            status="active",
            currency="EUR",
            interval="month",
            interval_count=1,
            started_on=dt.date(2026, 1, 1),
            current_period_start=dt.date(2026, 11, 1),
            current_period_end=dt.date(2026, 12, 1),
            collection_method=CollectionMethod.CHARGE_AUTOMATICALLY,
        )
    )
    db.session.commit()
    body = accounts.get("/billing-details").get_json()
    assert body["nextBillingDate"] == "2026-12-01"
    assert body["currentPeriodStart"] == "2026-11-01"
    assert body["currentPeriodEnd"] == "2026-11-30"
    assert body["collectionMethod"] == "charge_automatically"


# --- Consumptions --------------------------------------------------------------------------


def test_consumptions_create_is_idempotent_and_listed(accounts, world):
    body = _body("consumption", world)
    first = accounts.post("/consumptions", json=body)
    assert first.status_code == 201
    created = ConsumptionResponse.model_validate(first.get_json())
    assert first.get_json()["quantity"] == "12.500000"
    again = accounts.post("/consumptions", json=body)
    assert again.status_code == 201 and again.get_json()["id"] == created.id
    conflict = accounts.post("/consumptions", json={**body, "quantity": "13"})
    assert _generic(conflict, 409).errors[0].field == "body.idempotencyKey"
    accounts.post(
        "/consumptions",
        json={**body, "idempotencyKey": "k-2", "metric": "storage_gb", "quantity": 3},
    )
    listed = accounts.get("/consumptions?limit=1")
    page = ConsumptionListResponse.model_validate(listed.get_json())
    assert page.total == 2 and len(page.items) == 1 and page.limit == 1
    only = accounts.get("/consumptions?metric=api_calls").get_json()
    assert [item["metric"] for item in only["items"]] == ["api_calls"]
    window = accounts.get(
        "/consumptions?since=2026-10-03T10:00:00Z&until=2026-10-03T10:00:01Z"
    ).get_json()
    assert window["total"] == 2
    # Tenant B sees none of them.
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(UsageRecord)
            .where(UsageRecord.tenant_id == world.b.tenant.id)
        )
        == 0
    )


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": "-1"},
        {"quantity": "abc"},
        {"metric": ""},
        {"metric": "has space"},
        {"idempotencyKey": "x" * 101},
        {"unknown": 1},
        {"occurredAt": "yesterday"},
    ],
)
def test_consumption_validation_is_400(accounts, world, change):
    error = _generic(
        accounts.post("/consumptions", json={**_body("consumption", world), **change}), 400
    )
    assert error.code == "bad_request"
    assert error.errors and error.errors[0].field.startswith("body")


def test_bad_query_and_body_are_400(accounts):
    _generic(accounts.get("/consumptions?limit=0"), 400)
    _generic(accounts.get("/movements?offset=-1"), 400)
    _generic(accounts.post("/consumptions", data="nope", content_type="text/plain"), 400)
    _generic(accounts.post("/consumptions", data="{", content_type="application/json"), 400)


# --- Movements -----------------------------------------------------------------------------


def test_movements_with_balance(accounts, world):
    mark_paid(db.session, world.a.invoice)
    db.session.commit()
    response = accounts.get("/movements")
    page = MovementListResponse.model_validate(response.get_json())
    assert [m.kind for m in page.items] == ["payment", "invoice"] or {
        m.kind for m in page.items
    } == {"payment", "invoice"}
    assert page.total == 2
    assert page.balance_minor == 0 and page.currency == world.a.tenant.currency
    assert all(m.invoice_id == str(world.a.invoice.public_id) for m in page.items)
    assert sum(m.amount_minor for m in page.items) == page.balance_minor


# --- Refunds -------------------------------------------------------------------------------


def test_manual_refund_created_and_listed(accounts, world):
    mark_paid(db.session, world.a.invoice)
    db.session.commit()
    response = accounts.post(
        "/refunds", json={"invoiceId": str(world.a.invoice.public_id), "amountMinor": 500}
    )
    assert response.status_code == 201
    refund = RefundResponse.model_validate(response.get_json())
    assert refund.status == "succeeded" and refund.amount_minor == 500
    rest = accounts.post("/refunds", json={"invoiceId": str(world.a.invoice.public_id)})
    assert rest.get_json()["amountMinor"] == world.a.invoice.amount_due_minor - 500
    nothing = accounts.post("/refunds", json={"invoiceId": str(world.a.invoice.public_id)})
    assert _generic(nothing, 400).errors[0].type == "nothing_to_refund"
    listed = RefundListResponse.model_validate(accounts.get("/refunds").get_json())
    assert listed.total == 2
    movements = accounts.get("/movements").get_json()
    assert movements["balanceMinor"] == world.a.invoice.amount_due_minor  # all money returned


def test_refund_errors(accounts, world):
    _generic(accounts.post("/refunds", json={"invoiceId": str(world.b.invoice.public_id)}), 404)
    unpaid = accounts.post("/refunds", json={"invoiceId": str(world.a.invoice.public_id)})
    assert _generic(unpaid, 400).errors[0].field == "body.invoiceId"
    mark_paid(db.session, world.a.invoice)
    db.session.commit()
    too_much = accounts.post(
        "/refunds",
        json={"invoiceId": str(world.a.invoice.public_id), "amountMinor": 10**9},
    )
    assert _generic(too_much, 400).errors[0].type == "refund_refused"
    _generic(accounts.post("/refunds", json={"invoiceId": "x", "amountMinor": 0}), 400)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0


def test_stripe_refund_over_localstripe(accounts, world, localstripe):
    from portal.payments.collection import collect_invoice
    from portal.payments.methods import set_default_method
    from tests.payments.test_collection import add_card

    set_default_method(db.session, world.a.tenant, add_card(world.a.tenant, localstripe))
    payment = collect_invoice(db.session, world.a.invoice)
    db.session.commit()
    assert payment.status == "succeeded"
    response = accounts.post(
        "/refunds",
        json={
            "invoiceId": str(world.a.invoice.public_id),
            "amountMinor": 250,
            "reason": "Goodwill",
        },
    )
    assert response.status_code == 201, response.get_json()
    refund = db.session.scalars(sa.select(Refund)).one()
    assert refund.provider_ref and refund.provider_ref.startswith("re_")
    assert response.get_json()["paymentId"] == str(payment.public_id)


def test_provider_not_answering_is_502(app, accounts, world):
    from tests.conftest import free_port

    mark_paid(db.session, world.a.invoice, provider="stripe")
    db.session.commit()
    app.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{free_port()}"  # nobody listens
    response = accounts.post("/refunds", json={"invoiceId": str(world.a.invoice.public_id)})
    error = _generic(response, 502)
    assert error.code == "bad_gateway"
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0


def test_provider_timeout_is_504(accounts, world, monkeypatch):
    from portal.payments.providers import ProviderError
    from portal.payments.providers.stripe import StripeProvider

    def slow(self, session, payment, amount, *, reason=None):
        try:
            raise TimeoutError("read timed out")
        except TimeoutError as exc:
            raise ProviderError("Stripe could not be reached.", "provider_unavailable") from exc

    monkeypatch.setattr(StripeProvider, "refund", slow)
    mark_paid(db.session, world.a.invoice, provider="stripe")
    db.session.commit()
    response = accounts.post("/refunds", json={"invoiceId": str(world.a.invoice.public_id)})
    assert _generic(response, 504).code == "gateway_timeout"


# --- Billing info --------------------------------------------------------------------------


def test_billing_info_read_and_replace(accounts, world):
    current = BillingInfoResponse.model_validate(accounts.get("/billing-info").get_json())
    assert current.billing_email == world.a.tenant.billing_profile.billing_email
    response = accounts.put("/billing-info", json=_body("profile", world))
    assert response.status_code == 200
    updated = response.get_json()
    assert updated["companyName"] == "Alpha Industries GmbH"
    assert updated["ccEmails"] == ["cfo@alpha.example"]
    assert updated["language"] == "de"
    assert accounts.get("/billing-info").get_json()["billingEmail"] == "ap@alpha.example"


def test_billing_info_rules_are_400_and_write_nothing(accounts, world):
    before = accounts.get("/billing-info").get_json()
    bad = {**_body("profile", world), "vatId": "DE000", "billingEmail": "not-an-address"}
    error = _generic(accounts.put("/billing-info", json=bad), 400)
    fields = {e.field for e in error.errors}
    assert {"body.vatId", "body.billingEmail"} <= fields
    _generic(accounts.put("/billing-info", json={"companyName": "x"}), 400)
    assert accounts.get("/billing-info").get_json() == before


def test_billing_info_missing_is_404(accounts, world):
    db.session.delete(world.a.tenant.billing_profile)
    db.session.commit()
    _generic(accounts.get("/billing-info"), 404)


# --- Location tax --------------------------------------------------------------------------


def test_location_tax(accounts):
    response = accounts.get("/location-tax?country=DE&date=2026-06-01")
    tax = LocationTaxResponse.model_validate(response.get_json())
    assert response.get_json()["standardRate"] == "19.0000"
    assert tax.eu_member and tax.valid_on == dt.date(2026, 6, 1)
    assert "7.0000" in response.get_json()["reducedRates"]
    swiss = accounts.get("/location-tax?country=CH&date=2026-06-01").get_json()
    assert swiss["euMember"] is False
    assert accounts.get("/location-tax?country=FR").status_code == 200


def test_location_tax_errors(accounts):
    _generic(accounts.get("/location-tax"), 400)
    _generic(accounts.get("/location-tax?country=XX"), 400)
    _generic(accounts.get("/location-tax?country=DE&date=tomorrow"), 400)
    _generic(accounts.get("/location-tax?country=DE&date=1900-01-01"), 404)


# --- The document ----------------------------------------------------------------------------


def test_openapi_document_lists_every_operation_and_error(client):
    spec = client.get(f"{PREFIX}/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    operations = [
        (method.upper(), path) for path, methods in spec["paths"].items() for method in methods
    ]
    assert len(operations) == len(OPERATIONS)
    for path, methods in spec["paths"].items():
        assert path.startswith(f"{PREFIX}/{{orgId}}/accounts/{{accountId}}/")
        for op in methods.values():
            assert {"400", "401", "403", "404", "500"} <= set(op["responses"])
            assert "422" not in op["responses"]
            error_ref = op["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
            assert error_ref.endswith("/GenericResponse")
    refunds = spec["paths"][f"{PREFIX}/{{orgId}}/accounts/{{accountId}}/refunds"]["post"]
    assert {"502", "504"} <= set(refunds["responses"])
    assert client.get(f"{PREFIX}/docs").status_code == 200
