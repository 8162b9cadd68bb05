"""API tokens: lookup by hash, kinds, and how their use is recorded."""

from __future__ import annotations

import datetime as dt

from portal.db import utcnow
from portal.tenancy.models import TokenKind
from portal.tenancy.services import (
    TOKEN_USE_RESOLUTION,
    authenticate_token,
    create_api_token,
    revoke_api_token,
)


def test_use_is_recorded_at_most_once_a_minute(app, world, session):
    token = world.a.token
    assert authenticate_token(session, world.a.token_secret, TokenKind.TENANT) == token
    first = token.last_used_at
    assert first is not None
    session.commit()
    # A busy client's next requests do not write the row again...
    authenticate_token(session, world.a.token_secret, TokenKind.TENANT)
    assert token.last_used_at == first and not session.dirty
    # ...until the recorded use is older than the resolution.
    token.last_used_at = utcnow() - TOKEN_USE_RESOLUTION - dt.timedelta(seconds=1)
    session.commit()
    authenticate_token(session, world.a.token_secret, TokenKind.TENANT)
    assert token.last_used_at > first


def test_wrong_kind_revoked_or_unknown_tokens_are_refused(app, world, session):
    assert authenticate_token(session, world.a.token_secret, TokenKind.ADMIN) is None
    assert authenticate_token(session, "tbp_unknown", TokenKind.TENANT) is None
    assert authenticate_token(session, "not-even-prefixed", TokenKind.TENANT) is None
    token, secret = create_api_token(
        session, kind=TokenKind.TENANT, tenant=world.a.tenant, name="x", scopes=["billing:read"]
    )
    revoke_api_token(token)
    session.commit()
    assert authenticate_token(session, secret, TokenKind.TENANT) is None
