"""A client of the JSON surfaces that sends bearer tokens."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from portal.extensions import db
from portal.tenancy.models import TokenKind
from portal.tenancy.services import create_api_token

# Every API test runs with Stripe (localstripe) and Mollie (the stand-in) configured, so the
# payment operations and the fuzzing reach real provider calls over loopback.
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    app_config,
    localstripe,
    localstripe_server,
    mollie,
    mollie_server,
)

PREFIX = "/api/v1/billing"


@dataclass
class ApiClient:
    client: object
    token: str

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        token = self.token if token is None else token
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        return self.client.open(PREFIX + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.call("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.call("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.call("DELETE", path, **kwargs)


def write_token(tenant) -> str:
    _, secret = create_api_token(
        db.session,
        kind=TokenKind.TENANT,
        tenant=tenant,
        name="writer",
        scopes=["billing:read", "billing:write"],
    )
    db.session.commit()
    return secret


@pytest.fixture
def api(client, world) -> ApiClient:
    """Tenant A with a read and write token."""
    return ApiClient(client, write_token(world.a.tenant))


@pytest.fixture
def reader(client, world) -> ApiClient:
    """Tenant A with the read-only token of the world."""
    return ApiClient(client, world.a.token_secret)
