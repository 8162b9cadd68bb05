"""Schemathesis against the provider console's served OpenAPI document, with every check.

Valid and invalid requests with an admin token (given to schemathesis as the document's
bearer scheme, so it also sends requests without it): no server error (no 5xx, no 520), every
status, header, content type and body as documented, invalid input refused with a 4xx and
valid input accepted. Valid requests name tenant A's company, invoice or quota job (invalid
ones keep their generated ids), so they reach the operations instead of stopping at a 404.

Two documented rules JSON Schema cannot state are applied to the valid requests generated:
a date range ends no earlier than it starts and at most a year later, and a request target
over MAX_REQUEST_TARGET bytes is refused (the documented 400 uri_too_long; its other
checks still run). A valid new company names an existing seller and a billing profile the
rules accept; a company change refused for a rule the schema cannot state (a 400 of
invalid_value entries: check digits, an unknown seller, rules between profile fields) is not
counted against positive data acceptance.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from portal.api.console.collections import a_year_after
from portal.api.console.envelope import MAX_REQUEST_TARGET, PREFIX
from portal.extensions import db
from tests.api_console.conftest import admin_token
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, TenantFactory

#: Examples per operation (valid and invalid drawn together): about 40 s for the whole run.
EXAMPLES = 25
#: What `schemathesis run --checks all` runs on each response.
REQUIRED_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
}


#: 409s of an operation that ran (the idempotency ones stop before it).
STATE_REFUSALS = {
    "409 already_archived",
    "409 already_paid",
    "409 closed",
    "409 not_a_draft",
    "409 not_finalized",
    "409 slug_taken",
    "409 test_failed",
    "409 already_member",
    "409 invitation_pending",
    "409 invitation_accepted",
    "409 invitation_revoked",
}
#: A billing profile the services accept (the schema cannot state VAT ID check digits, a
#: deliverable-looking e-mail address or the rules between fields such as tax exemption).
VALID_PROFILE = {
    "companyName": "Fuzz GmbH",
    "addressLine1": "Hafenstraße 3",
    "postalCode": "20457",
    "city": "Hamburg",
    "country": "DE",
    "billingEmail": "ap@fuzz.example",
}


#: The subscription, charge and usage operations (issue 16).
SETUP_PATHS = re.compile(r"/billing/(subscriptions|charges|usage|quotas)")


def _invitation_of_a(world):
    """A pending invitation of tenant A, for the invitation operations' path."""
    from portal.ops.audit import Actor
    from portal.tenancy.invitations import invite

    invitation = invite(
        db.session, world.a.tenant, email="fuzz@invitee.example", role="viewer",
        actor=Actor(label="fuzz"),
    )  # fmt: skip
    db.session.commit()
    return invitation


def _subscription_of_a(world):
    """A subscription of tenant A, for the subscription operations' path."""
    from portal.catalog.models import Subscription

    start = dt.date.today().replace(day=1)
    subscription = Subscription(
        tenant_id=world.a.tenant.id,
        currency="EUR",
        started_on=start,
        current_period_start=start,
        current_period_end=(start + dt.timedelta(days=32)).replace(day=1),
    )
    db.session.add(subscription)
    db.session.commit()
    return subscription


def all_checks() -> list:
    """Every response check schemathesis has registered (its "all")."""
    load_all_checks()
    checks = [check for check in CHECKS.get_all() if not isinstance(check, type)]
    assert REQUIRED_CHECKS <= {check.__name__ for check in checks}
    return checks


def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def within_documented_range(case):
    """A valid case whose fromDate/toDate also follow the documented range rule."""
    query = case.query or {}
    start, end = _date(query.get("fromDate")), _date(query.get("toDate"))
    if start is None or end is None:
        return case
    if case.path.endswith("generateQuotaUsageReport"):  # at most 366 days later
        latest = start + dt.timedelta(days=366) if start.year < dt.date.max.year else dt.date.max
    else:
        latest = a_year_after(start)
    if not start <= end <= latest:
        query["toDate"] = start.isoformat()
    return case


def valid_company_case(case, seller_uid: str):
    """A valid new company names an existing seller and a profile the rules accept (its
    other properties stay as generated)."""
    if case.method == "POST" and case.path == PREFIX and isinstance(case.body, dict):
        case.body["sellerUid"] = seller_uid
        case.body["billingProfile"] = dict(VALID_PROFILE)
    return case


def refused_by_a_rule(case, response) -> bool:
    """A company change the services refuse for a rule the schema cannot state (an unknown
    seller, check digits, rules between profile fields): a 400 of invalid_value entries."""
    if response.status_code != 400 or "/billing/" in case.path or case.method == "GET":
        return False
    errors = response.json().get("errors") or []
    # An invitation's address is checked as e-mail is delivered (email-validator), beyond
    # what JSON Schema's "email" format states.
    rules = ("invalid_value", "invalid_email")
    return bool(errors) and all(error["type"] in rules for error in errors)


def _outcome(response) -> str:
    """The status of an answer, with the error type of a 409 (``409 not_a_draft``)."""
    if response.status_code == 409:
        return f"409 {response.json()['errors'][0]['type']}"
    return str(response.status_code)


def _target_length(response) -> int:
    url = urlsplit(response.request.url)
    return len(url.path) + (len(url.query) + 1 if url.query else 0)


def test_console_conforms_to_its_openapi_document(app, client, world):
    token = admin_token()
    auth = {"Authorization": f"Bearer {token}"}
    report = client.post(
        f"{PREFIX}/{world.a.tenant.public_id}/billing/generateQuotaUsageReport"
        "?fromDate=2026-01-01&toDate=2026-01-31",
        headers=auth,
    )
    assert report.status_code in (200, 202), report.get_json()
    draft = make_invoice(
        world.a.tenant,
        finalize=False,
        period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 11, 30),
    )
    db.session.commit()
    real = {
        "companyUid": str(world.a.tenant.public_id),
        "invoiceUid": str(world.a.invoice.public_id),
        "jobUid": report.get_json()["data"]["jobUid"],
        "subscriptionUid": str(_subscription_of_a(world).public_id),
        "invitationUid": str(_invitation_of_a(world).public_id),
    }
    deletable = str(draft.public_id)  # the finalized invoice can only be refused
    archivable = TenantFactory(seller=world.a.tenant.seller)
    BillingProfileFactory(tenant=archivable)
    db.session.commit()
    seller_uid = str(world.a.tenant.seller.public_id)
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearerAuth": {"bearer": token}}}})
    schema = schemathesis.openapi.from_wsgi(f"{PREFIX}/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 38
    checks = all_checks()
    failures = []
    answered: dict[str, set[str]] = {}
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE)
            .map(within_documented_range)
            .map(lambda case: valid_company_case(case, seller_uid)),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            positive = case.meta.generation.mode.is_positive
            if positive and case.path_parameters:
                case.path_parameters.update(
                    {name: real[name] for name in case.path_parameters if name in real}
                )
                if case.method == "DELETE" and "invoiceUid" in case.path_parameters:
                    case.path_parameters["invoiceUid"] = deletable
                elif case.method == "DELETE" and "invitationUid" not in case.path_parameters:
                    # archiving company A would stop the others
                    case.path_parameters["companyUid"] = str(archivable.public_id)
            if positive and case.headers and "X-Request-id" in case.headers:
                # Generated ids repeat across cases; a repeat is a documented 409, but it
                # would keep the request from reaching the operation.
                case.headers["X-Request-id"] = str(uuid.uuid4())
            response = case.call()
            answered.setdefault(case.operation.label, set()).add(_outcome(response))
            if positive and _target_length(response) > MAX_REQUEST_TARGET:
                assert response.status_code == 400, response.text
                assert response.json()["errors"][0]["type"] == "uri_too_long"
                case.validate_response(
                    response, checks=checks, excluded_checks=[positive_data_acceptance]
                )
                return
            if (positive and refused_by_a_rule(case, response)) or SETUP_PATHS.search(case.path):
                # Schema-valid bodies refused with 400 by rules JSON Schema cannot state: an
                # unknown seller or price, check digits, inconsistent dates (tests/setup).
                case.validate_response(
                    response, checks=checks, excluded_checks=[positive_data_acceptance]
                )
                return
            case.validate_response(response, checks=checks)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, then all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    if failures:
        pytest.fail("\n\n".join(failures))
    # The token is sent and ids are real often enough to get past 401 and 404: each
    # operation answers 2xx, or refuses for the state of what it changes (e.g. sending a
    # paid invoice), at least once. The signed PDF link cannot be guessed, so that one only
    # ever refuses.
    unreached = [
        label
        for label, outcomes in answered.items()
        if not any(o.startswith("2") or o in STATE_REFUSALS for o in outcomes)
        and "/pdf/download" not in label
        and not SETUP_PATHS.search(label)
    ]
    assert not unreached, {label: answered[label] for label in unreached}
