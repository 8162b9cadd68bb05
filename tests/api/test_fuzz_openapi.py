"""Schemathesis against the served OpenAPI document: no 5xx and no answer outside the schema.

The app is called in-process over WSGI with a read-write token of tenant A; tenant B's
objects exist too, so generated ids never reach them (they are 404 like any unknown id).
Each operation gets its own hypothesis run, so a failure names the operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import write_token
from tests.web.selfserve_support import self_serve_subscription

#: Examples per operation; each is one request through the whole app.
EXAMPLES = 40
#: What must hold for every answer, valid input or not. (Schemathesis' "positive data
#: accepted" check is left out on purpose: a VAT ID's check digits or a country code's
#: existence are rules a JSON schema cannot express, and breaking them is a 422.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/billing/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_to_its_openapi_document(app, world):
    token = write_token(world.a.tenant)
    # A subscription of tenant A, so the subscription operations reach the services too.
    subscription_id = self_serve_subscription(world.a.tenant).uid
    operations = _operations(app)
    assert len(operations) == 17 + 6  # the reference's, and the self-service subscription ones
    failures = []
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
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
            if "subscription_id" in (case.path_parameters or {}):
                case.path_parameters["subscription_id"] = subscription_id
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    if failures:
        pytest.fail("\n\n".join(failures))
