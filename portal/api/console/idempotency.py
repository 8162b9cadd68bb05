"""X-Request-id idempotency of the provider console's changing operations.

The first request under an id reserves it (a committed row, unique per token and id) before
any work, so a concurrent duplicate cannot start the work a second time: it waits for the
first one's stored answer. Within five minutes a repeat gets the stored answer and changes
nothing; the same id with another method, path, query or body is refused. A 5xx answer is not
kept, so the client can retry it.

A successful answer is stored in the operation's own transaction, which the app's unit of
work commits, so the change and its answer are kept together. The commits here are the ones
the unit of work cannot make: the reservation before the work, the answer of a refused
request (its work is rolled back, its answer kept) and the release of a failed one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from flask import Response, current_app, g, request
from sqlalchemy.exc import IntegrityError

from portal.api.core import ApiError, Operation, error_entry
from portal.db import utcnow
from portal.extensions import db
from portal.ops.models import IdempotencyRecord

#: How long an id is remembered (the reference: "idempotent only during 5 minute interval").
WINDOW = dt.timedelta(minutes=5)
#: Headers of the stored answer worth replaying.
REPLAYED_HEADERS = ("Content-Type", "Location", "Content-Disposition")
HEADER = "X-Request-id"


def request_hash() -> str:
    """What makes two requests "the same": method, path, query and body."""
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0" + request.path.encode())
    digest.update(b"\0" + json.dumps(sorted(request.args.items(multi=True))).encode())
    digest.update(b"\0" + request.get_data(cache=True))
    return digest.hexdigest()


def idempotent(op: Operation, run: Callable[[], Response]) -> Response:
    """Answer ``op`` once per X-Request-id; GETs and requests without the header just run."""
    key = request.headers.get(HEADER)
    if request.method == "GET" or not key or g.get("api_token") is None:
        return run()  # reads, requests without an id, and public operations just run
    try:
        key = str(uuid.UUID(key))
    except ValueError:
        raise ApiError(
            400,
            [error_entry(["header", HEADER], f"{HEADER} must be a UUID.", "invalid_request_id")],
        ) from None
    scope = f"console:{g.api_token.id}"
    fingerprint = request_hash()
    record = _reserve(scope, key, fingerprint)
    if record is not None:  # seen before: replay, wait for, or refuse
        return _answer_for(record, fingerprint)
    try:
        response = run()
    except Exception:
        _forget(scope, key)
        raise
    if response.status_code >= 500:
        _forget(scope, key)
        return response
    if response.status_code >= 400:
        db.session.rollback()  # a refused request changes nothing; only its answer is kept
        _store(scope, key, response)
        # Commit the answer: the unit of work rolls back every answer from 400 on.
        db.session.commit()
    else:
        _store(scope, key, response)  # committed with the operation's work
    return response


def _reserve(scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Reserve ``key``; None when reserved now, else the earlier request's record."""
    now = utcnow()
    db.session.execute(
        sa.delete(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at <= now,
        )
    )
    try:
        with db.session.begin_nested():
            db.session.add(
                IdempotencyRecord(
                    scope=scope,
                    key=key,
                    request_hash=fingerprint,
                    created_at=now,
                    expires_at=now + WINDOW,
                )
            )
        db.session.commit()  # the reservation must be seen by a duplicate before any work
        return None
    except IntegrityError:
        db.session.rollback()  # taken before us: read the earlier request's record afresh
    return _load(scope, key)


def _load(scope: str, key: str) -> IdempotencyRecord | None:
    return db.session.scalars(
        sa.select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    ).first()


def _answer_for(record: IdempotencyRecord, fingerprint: str) -> Response:
    if record.request_hash != fingerprint:
        raise ApiError(
            409,
            [
                error_entry(
                    ["header", HEADER],
                    f"This {HEADER} was used for a different request within 5 minutes.",
                    "request_id_reused",
                )
            ],
        )
    deadline = time.monotonic() + current_app.config.get("IDEMPOTENCY_WAIT_SECONDS", 10)
    scope, key = record.scope, record.key
    while record is not None and record.response_status is None:
        if time.monotonic() > deadline:
            raise ApiError(
                409,
                [
                    error_entry(
                        ["header", HEADER],
                        "A request with this id is still being processed; retry shortly.",
                        "request_in_progress",
                    )
                ],
            )
        time.sleep(0.05)
        db.session.rollback()  # a fresh snapshot
        record = _load(scope, key)
    if record is None:  # the first attempt failed and was forgotten: nothing to replay
        raise ApiError(
            409,
            [
                error_entry(
                    ["header", HEADER],
                    "The first request with this id failed; send it again with a new id.",
                    "request_failed",
                )
            ],
        )
    response = Response(record.response_body or "", status=record.response_status)
    for name, value in (record.response_headers or {}).items():
        response.headers[name] = value
    response.headers["X-Idempotent-Replay"] = "true"
    return response


def _store(scope: str, key: str, response: Response) -> None:
    """Keep ``response`` as the answer under ``key`` (in the current transaction)."""
    db.session.execute(
        sa.update(IdempotencyRecord)
        .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        .values(
            response_status=response.status_code,
            response_body=response.get_data(as_text=True),
            response_headers={
                name: response.headers[name]
                for name in REPLAYED_HEADERS
                if name in response.headers
            },
        )
    )


def _forget(scope: str, key: str) -> None:
    db.session.rollback()  # the failed request's work is discarded before the release
    db.session.execute(
        sa.delete(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
        )
    )
    db.session.commit()  # released at once: the request's error must not keep it reserved
