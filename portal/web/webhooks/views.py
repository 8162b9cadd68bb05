"""Provider webhooks: verify, store in the inbox, answer fast; processing runs on the queue.

One URL per provider, ``/webhooks/<provider>`` (``/webhooks/stripe``, ``/webhooks/mollie``),
so a new provider needs no new route.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from portal.config import check_payment_config
from portal.extensions import csrf, db, limiter
from portal.payments import collection  # noqa: F401  (registers the collection tasks and hook)
from portal.payments.providers import ProviderError, UnknownProvider, get_provider
from portal.payments.webhooks import store_events

bp = Blueprint("webhooks", __name__)
csrf.exempt(bp)  # authenticated by signature (Stripe) or by re-fetching the object (Mollie)


@bp.record_once
def _refuse_unsafe_payment_config(state) -> None:
    """Startup guard: no fake payment API with live keys, and none in production."""
    check_payment_config(state.app.config)


def _limit() -> str:
    return current_app.config.get("RATELIMIT_WEBHOOKS", "600 per minute")


@bp.post("/webhooks/<provider_slug>")
@limiter.limit(_limit)
def receive(provider_slug: str):
    """Accept one delivery: 200 once stored (or already seen), 400 when it does not verify."""
    from flask import request

    try:
        provider = get_provider(provider_slug)
    except UnknownProvider:
        return jsonify(error="unknown provider"), 404
    try:
        events = provider.parse_webhook(request)
    except ProviderError as exc:
        status = 503 if exc.code == "provider_unavailable" else 400
        return jsonify(error=exc.code), status
    stored = store_events(db.session, provider, events)
    db.session.commit()
    return jsonify(received=len(events), new=len(stored)), 200
