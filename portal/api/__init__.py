"""JSON surfaces of the portal, each a blueprint of declared operations (see core.py)."""

from __future__ import annotations

from flask import Flask


def register_api(app: Flask) -> None:
    """Register every JSON surface with its OpenAPI document and docs page."""
    from portal.api.accounts.views import api as accounts_api
    from portal.api.billing.views import api as billing_api
    from portal.api.console.views import api as console_api

    for api in (billing_api, console_api, accounts_api):
        app.register_blueprint(api.blueprint)
