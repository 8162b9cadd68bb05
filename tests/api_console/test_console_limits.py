"""The provider console's limits and its OpenAPI document: rate limit, request ids, URL
length, the wire format of dates, and that the document says what the server does."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from portal.api.console.envelope import MAX_REQUEST_TARGET, PREFIX
from tests.api_console.conftest import ConsoleClient, admin_token
from tests.factories.invoices import make_invoice

RANGE = {"fromDate": "2026-01-01", "toDate": "2026-12-31"}


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["data"] is None and body["meta"]["correlationId"]
    [error] = body["errors"]
    assert error["code"] == status
    return error


@pytest.fixture
def spec(client) -> dict:
    return client.get(f"{PREFIX}/openapi.json").get_json()


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_is_per_token_for_the_whole_surface(app_config, world):
    from portal import create_app

    app_config.update(RATELIMIT_ENABLED=True, API_RATE_LIMIT="2 per minute")
    limited = create_app(app_config)
    with limited.app_context():
        first, second = admin_token(), admin_token()
    client = limited.test_client()
    console, other = ConsoleClient(client, first), ConsoleClient(client, second)
    assert console.get("/billing/settings/").status_code == 200
    # Another operation spends the same budget.
    assert console.get(f"/{world.a.tenant.public_id}/billing/settings/").status_code == 200
    refused = console.get("/billing/settings/")
    error = _error(refused, 429)
    assert error["type"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["X-Correlation-Id"] == refused.get_json()["meta"]["correlationId"]
    assert other.get("/billing/settings/").status_code == 200  # its own budget
    anonymous = ConsoleClient(client, "")
    assert anonymous.get("/billing/settings/").status_code == 401  # by address, not limited yet


def test_every_operation_documents_429_with_retry_after(spec):
    for methods in spec["paths"].values():
        for operation in methods.values():
            limited = operation["responses"]["429"]
            assert limited["headers"]["Retry-After"]["required"] is True


# --- request id, client version, URL length --------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_request_id_that_is_not_a_uuid_is_400_on_every_operation(console, world, method):
    path = "/billing/settings/" if method == "GET" else f"/billing/invoices/{uuid.uuid4()}/send"
    response = console.call(method, path, headers={"X-Request-id": "order-42"})
    error = _error(response, 400)
    assert error["type"] == "invalid_request_id" and error["location"] == "header/X-Request-id"
    # The bad id is not echoed as the correlation id.
    assert response.get_json()["meta"]["correlationId"] != "order-42"


def test_a_uuid_request_id_is_the_correlation_id(console):
    sent = str(uuid.uuid4()).upper()
    response = console.get("/billing/settings/", headers={"X-Request-id": sent})
    assert response.status_code == 200
    assert response.get_json()["meta"]["correlationId"] == sent.lower()
    assert response.headers["X-Correlation-Id"] == sent.lower()


def test_a_malformed_client_version_is_400(console):
    error = _error(console.get("/billing/settings/", headers={"X-Client-Version": "3.6 beta"}), 400)
    assert error["type"] == "invalid_client_version"


def test_a_url_over_the_limit_is_400_in_the_error_shape(console, world):
    value = "x" * MAX_REQUEST_TARGET
    filter_ = [{"property": "/companyName", "operation": "contains", "value": value}]
    error = _error(console.get("/billing/settings/", query={"filter": filter_}), 400)
    assert error["type"] == "uri_too_long"
    # Just within the limit is answered as usual (here: the value is too long for a filter).
    short = [{"property": "/companyName", "operation": "contains", "value": "x" * 101}]
    error = _error(console.get("/billing/settings/", query={"filter": short}), 400)
    assert error["location"] == "query/filter/0/value"


def test_the_document_states_the_limits_it_enforces(spec):
    settings = spec["paths"][f"{PREFIX}/billing/settings/"]["get"]
    params = {param["name"]: param for param in settings["parameters"]}
    request_id = params["X-Request-id"]["schema"]
    assert request_id["format"] == "uuid" and request_id["pattern"].startswith("^[0-9a-fA-F]{8}-")
    assert str(MAX_REQUEST_TARGET) in spec["info"]["description"]
    assert "uri_too_long" in settings["responses"]["400"]["description"]
    assert settings["responses"]["414"]["content"] == {"text/html": {"schema": {"type": "string"}}}


# --- filter, sort and select are JSON arrays -------------------------------------------------


def test_filter_sort_and_select_are_documented_as_json_arrays(spec):
    schemas = spec["components"]["schemas"]
    invoices = spec["paths"][f"{PREFIX}/billing/invoices/"]["get"]
    params = {param["name"]: param for param in invoices["parameters"]}
    for name, model in (("filter", "Invoice"), ("sort", "Invoice"), ("select", "Invoice")):
        media = params[name]["content"]["application/json"]
        ref = media["schema"]["$ref"].rsplit("/", 1)[-1]
        assert ref == f"{model}{name.title()}"
        shapes = schemas[ref]["anyOf"]
        assert {"type": "null"} in shapes
        [array] = [shape for shape in shapes if shape.get("type") == "array"]
        assert array["maxItems"] <= 30
        assert media["examples"]["example1"]["value"]  # an example of the accepted shape
    sort_item = schemas["InvoiceSortParameter"]
    assert "/issueDate" in sort_item["properties"]["property"]["enum"]
    assert sort_item["properties"]["direction"]["enum"] == ["ascending", "descending"]
    select_paths = schemas["InvoiceSelectParameter"]["properties"]["propertyPath"]["enum"]
    assert {"/totals", "/totals/amountDueMinor", "/createdAt"} <= set(select_paths)


def test_the_documented_examples_are_accepted(console, world, spec):
    collections = ((f"{PREFIX}/billing/settings/", {}), (f"{PREFIX}/billing/invoices/", RANGE))
    for path, query in collections:
        params = spec["paths"][path]["get"]["parameters"]
        examples = {
            param["name"]: param["content"]["application/json"]["examples"]["example1"]["value"]
            for param in params
            if "content" in param
        }
        response = console.get(path.removeprefix(PREFIX), query={**query, **examples})
        assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    "query",
    [
        {"filter": {"property": "/billingDay", "operation": "equals", "value": 1}},  # no array
        {"sort": {"property": "/billingDay"}},
        {"filter": [{"property": "/billingDay", "operation": "equals", "value": "1"}]},
        {"filter": [{"property": "/autoSend", "operation": "lessThan", "value": True}]},
        {"filter": [{"property": "/billingDay", "operation": "equals", "value": 1, "x": 1}]},
        {"select": [{"propertyPath": "/billingDay", "extra": True}]},
    ],
)
def test_what_the_schema_refuses_the_server_refuses(console, world, query):
    error = _error(console.get("/billing/settings/", query=query), 400)
    assert error["location"].startswith("query/")


def test_filters_on_each_kind_run_in_sql(console, world):
    for item in (
        {"property": "/autoSend", "operation": "equals", "value": False},
        {"property": "/autoSend", "operation": "in", "value": [True, None]},
        {"property": "/discountPercent", "operation": "lessThanOrEqual", "value": "12.5"},
        {"property": "/billingDay", "operation": "equals", "value": 1.0},
        {"property": "/companyUid", "operation": "notEquals", "value": str(uuid.uuid4())},
    ):
        response = console.get("/billing/settings/", query={"filter": [item]})
        assert response.status_code == 200, (item, response.get_json())
    created = {
        "property": "/createdAt",
        "operation": "greaterThan",
        "value": "0001-01-01T00:00:00+23:59",  # before year 1 in UTC: before everything
    }
    everything = console.get("/billing/invoices/", query={**RANGE, "filter": [created]})
    assert everything.status_code == 200, everything.get_json()


# --- dates on the wire -------------------------------------------------------------------------


def _is_rfc3339(value: str) -> bool:
    return dt.datetime.fromisoformat(value).utcoffset() == dt.timedelta(0) and "T" in value


def test_job_and_invoice_dates_are_iso_8601(console, world, session):
    job = console.post(
        f"/{world.a.tenant.public_id}/billing/generateQuotaUsageReport", query=RANGE
    ).get_json()["data"]
    fetched = console.get(f"/billing/jobs/{job['jobUid']}").get_json()["data"]
    for data in (job, fetched):
        assert _is_rfc3339(data["createdAt"]), data["createdAt"]
        assert data["finishedAt"] is None or _is_rfc3339(data["finishedAt"])
    invoice = console.get(f"/billing/invoices/{world.a.invoice.public_id}").get_json()["data"]
    assert _is_rfc3339(invoice["createdAt"])
    assert dt.date.fromisoformat(invoice["issueDate"])
    selected = console.get(
        f"/billing/invoices/{world.a.invoice.public_id}",
        query={"select": [{"propertyPath": "/createdAt"}]},
    ).get_json()["data"]
    assert selected == {"createdAt": invoice["createdAt"]}


def test_a_range_at_the_end_of_the_calendar_is_answered(console, world):
    response = console.get(
        "/billing/invoices/", query={"fromDate": "9999-06-01", "toDate": "9999-12-31"}
    )
    assert response.status_code == 200, response.get_json()


# --- JSON Patch as documented ------------------------------------------------------------------


def test_patch_takes_json_integers_and_remove_clears(console, world):
    url = f"/{world.a.tenant.public_id}/billing/settings/"
    patch = [
        {"op": "replace", "path": "/billingDay", "value": 7.0},
        {"op": "add", "path": "/notes", "value": "Key account"},
        {"op": "remove", "path": "/notes"},
        {"op": "test", "path": "/notes", "value": None},
    ]
    response = console.patch(url, json=patch)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["billingDay"] == 7
    assert response.get_json()["data"]["notes"] is None


def test_patch_media_types_and_body_are_documented(spec):
    patch = spec["paths"][f"{PREFIX}/{{companyUid}}/billing/settings/"]["patch"]
    content = patch["requestBody"]["content"]
    assert set(content) == {"application/json", "application/json-patch+json"}
    body = spec["components"]["schemas"]["SettingsPatch"]
    assert body["type"] == "array" and body["maxItems"] == 100


# --- every status the server gives -----------------------------------------------------------


def test_every_operation_documents_what_it_can_answer(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            statuses = set(operation["responses"])
            assert {"400", "414", "429", "520"} <= statuses, (method, path)
            assert "422" not in statuses  # the console answers validation errors with 400
            if operation["security"]:
                assert {"401", "403"} <= statuses
            if "{" in path:
                assert "404" in statuses
            if method != "get":
                assert {"409", "413"} <= statuses
            for status, response in operation["responses"].items():
                if status != "414":
                    assert response["headers"]["X-Correlation-Id"]["required"] is True
    generate = spec["paths"][f"{PREFIX}/{{companyUid}}/billing/generateInvoices"]["post"]
    assert {"200", "202"} <= set(generate["responses"])
    assert generate["responses"]["202"]["headers"]["Location"]["required"] is True
    job = generate["responses"]["202"]["content"]["application/json"]["schema"]["$ref"]
    assert job.endswith("ActionResponse_JobResource_")


def test_a_job_queued_for_later_answers_202_with_location(console, world, monkeypatch):
    from portal.extensions import queue

    monkeypatch.setattr(queue, "_immediate", False)  # no worker runs it during the request
    response = console.post(
        f"/{world.a.tenant.public_id}/billing/generateInvoices", query={"period": "2026-10"}
    )
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"].endswith(response.get_json()["data"]["jobUid"])
    assert response.get_json()["data"]["status"] == "queued"


def test_draft_deletion_answers_the_documented_shape(console, world, session):
    draft = make_invoice(
        world.a.tenant,
        finalize=False,
        period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 11, 30),
    )
    session.commit()
    response = console.delete(f"/billing/invoices/{draft.public_id}")
    assert response.get_json() == {
        "errors": [],
        "data": {"instanceUid": str(draft.public_id), "deleted": True},
        "meta": {"correlationId": response.headers["X-Correlation-Id"]},
    }
    assert json.loads(response.get_data())["data"]["deleted"] is True
