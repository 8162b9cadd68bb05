"""Provider webhooks: verify, store in the inbox, answer fast; processing runs on the queue.

One URL per provider, ``/webhooks/<provider>`` (``/webhooks/stripe``, ``/webhooks/mollie``),
so a new provider needs no new route.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from portal.api.core import json_max_depth, json_problems, read_body, unstorable_text
from portal.config import check_payment_config
from portal.extensions import csrf, db, limiter
from portal.payments import collection  # noqa: F401  (registers the collection tasks and hook)
from portal.payments.providers import ProviderError, UnknownProvider, WebhookEvent, get_provider
from portal.payments.webhooks import store_events

bp = Blueprint("webhooks", __name__)
csrf.exempt(bp)  # authenticated by signature (Stripe) or by re-fetching the object (Mollie)

#: The most a delivery may send when ``MAX_CONTENT_LENGTH`` sets no limit: a webhook is
#: unauthenticated until verified, so it is never read whole whatever its size.
MAX_WEBHOOK_BYTES = 1024 * 1024


@bp.record_once
def _refuse_unsafe_payment_config(state) -> None:
    """Startup guard: no fake payment API with live keys, and none in production."""
    check_payment_config(state.app.config)


def _limit() -> str:
    return current_app.config.get("RATELIMIT_WEBHOOKS", "600 per minute")


def _unstorable(events: list[WebhookEvent]) -> bool:
    """Whether an event could not go into the inbox as it is: text no column stores, or a
    payload nested deeper than ``JSON_MAX_DEPTH`` (or with a non-finite number)."""
    max_depth = json_max_depth()
    return any(
        unstorable_text(event.event_id)
        or unstorable_text(event.event_type)
        or json_problems(event.payload, max_depth=max_depth, limit=1)
        for event in events
    )


@bp.post("/webhooks/<provider_slug>")
@limiter.limit(_limit)
def receive(provider_slug: str):
    """Accept one delivery: 200 once stored (or already seen), 400 when it does not verify
    or is not an event, 413 when it is larger than ``MAX_CONTENT_LENGTH``; nothing is
    stored unless every event of the delivery can be."""
    try:
        provider = get_provider(provider_slug)
    except UnknownProvider:
        return jsonify(error="unknown provider"), 404
    request.max_content_length = request.max_content_length or MAX_WEBHOOK_BYTES
    try:
        read_body()  # the provider parses these bytes (the form, the signed JSON) from here
    except RequestEntityTooLarge:  # refused before more than the limit was read
        return jsonify(error="payload_too_large"), 413
    try:
        events = provider.parse_webhook(request)
    except ProviderError as exc:
        status = 503 if exc.code == "provider_unavailable" else 400
        return jsonify(error=exc.code), status
    if _unstorable(events):
        return jsonify(error="bad_payload"), 400
    stored = store_events(db.session, provider, events)
    return jsonify(received=len(events), new=len(stored)), 200
