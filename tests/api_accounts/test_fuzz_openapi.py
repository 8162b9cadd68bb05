"""Schemathesis against the account API's served OpenAPI document: no 5xx, no answer
outside the schema, valid and invalid input alike.

Path parameters are pinned to tenant A's seller and account (and half the time to its
invoice), so generated requests reach the operations instead of stopping at a 404.
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

from portal.extensions import db
from portal.invoices.lifecycle import mark_paid
from tests.api_accounts.conftest import PREFIX, admin_token

EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_account_api_conforms_to_its_openapi_document(app, world):
    token = admin_token("admin:read", "admin:write")
    mark_paid(db.session, world.a.invoice)  # so refunds have something to refund
    db.session.commit()
    schema = schemathesis.openapi.from_wsgi(f"{PREFIX}/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10
    pinned = {
        "orgId": str(world.a.tenant.seller.public_id),
        "accountId": str(world.a.tenant.public_id),
    }
    failures = []
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases, real_invoice=st.booleans())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case, real_invoice):
            if case.path_parameters is not None:
                case.path_parameters.update(pinned)
                if real_invoice and "invoice_id" in case.path_parameters:
                    case.path_parameters["invoice_id"] = str(world.a.invoice.public_id)
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    if failures:
        pytest.fail("\n\n".join(failures))
