"""Page or fragment: one URL renders the full page, or only its fragment for htmx."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request


def wants_fragment() -> bool:
    """An htmx request that swaps part of the page (history restores need the full page)."""
    htmx = getattr(request, "htmx", None)
    if htmx is None or not htmx:
        return False
    return not htmx.history_restore_request and not htmx.boosted


def render_page(page: str, fragment: str | None = None, **context: Any) -> Response:
    """Render ``page``, or ``fragment`` for an htmx request; always ``Vary: HX-Request``."""
    template = fragment if fragment and wants_fragment() else page
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response
