"""A client of the account API that sends admin bearer tokens, with providers configured."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from portal.extensions import db
from portal.tenancy.models import TokenKind
from portal.tenancy.services import create_api_token

# Stripe (localstripe) and Mollie (the stand-in) are configured, so refunds reach real
# provider calls over loopback.
from tests.payments.conftest import (  # noqa: F401  (fixtures)
    app_config,
    localstripe,
    localstripe_server,
    mollie,
    mollie_server,
)

PREFIX = "/api/v1/organizations"


def admin_token(*scopes: str) -> str:
    _, secret = create_api_token(
        db.session, kind=TokenKind.ADMIN, tenant=None, name="ops", scopes=list(scopes)
    )
    db.session.commit()
    return secret


@dataclass
class AccountClient:
    """Calls ``/api/v1/organizations/<seller>/accounts/<tenant>/...`` of one account."""

    client: object
    token: str
    org_id: str
    account_id: str

    def url(self, path: str, *, org_id: str | None = None, account_id: str | None = None) -> str:
        org = self.org_id if org_id is None else org_id
        account = self.account_id if account_id is None else account_id
        return f"{PREFIX}/{org}/accounts/{account}{path}"

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        token = self.token if token is None else token
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        url = self.url(
            path, org_id=kwargs.pop("org_id", None), account_id=kwargs.pop("account_id", None)
        )
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.call("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.call("PUT", path, **kwargs)


@pytest.fixture
def accounts(client, world) -> AccountClient:
    """Tenant A as an account of its seller, with a read-write admin token."""
    return AccountClient(
        client,
        admin_token("admin:read", "admin:write"),
        str(world.a.tenant.seller.public_id),
        str(world.a.tenant.public_id),
    )
