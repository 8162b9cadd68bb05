"""A client of the provider-console API with admin tokens."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from portal.extensions import db
from portal.tenancy.models import TokenKind
from portal.tenancy.services import create_api_token

PREFIX = "/api/v1/organizations/companies"


@dataclass
class ConsoleClient:
    client: object
    token: str

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        token = self.token if token is None else token
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        if "query" in kwargs:
            kwargs["query_string"] = {
                k: json.dumps(v) if isinstance(v, list | dict) else v
                for k, v in kwargs.pop("query").items()
            }
        return self.client.open(PREFIX + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.call("DELETE", path, **kwargs)


def admin_token(scopes=("admin:read", "admin:write")) -> str:
    _, secret = create_api_token(
        db.session, kind=TokenKind.ADMIN, name="console", scopes=list(scopes)
    )
    db.session.commit()
    return secret


@pytest.fixture
def console(client, world) -> ConsoleClient:
    return ConsoleClient(client, admin_token())


@pytest.fixture
def request_id() -> str:
    return str(uuid.uuid4())
