"""JSON surfaces of the portal, each a blueprint of declared operations (see core.py)."""

from __future__ import annotations

from flask import Flask


def register_api(app: Flask) -> None:
    """Register every JSON surface with its OpenAPI document and docs page."""
    # Imported here, not at the top: importing any portal.api.* module runs this package
    # first, and each surface imports portal.api.core back; at the top, that cycle would
    # also build all three surfaces whenever one module of the package is imported.
    from portal.api.accounts.views import api as accounts_api
    from portal.api.billing import subscriptions as billing_subscriptions  # adds operations
    from portal.api.billing.views import api as billing_api
    from portal.api.console import quotas, subscriptions, team  # declare console operations
    from portal.api.console.catalog import api as console_catalog_api
    from portal.api.console.setup_parties import api as sellers_api  # adds company operations
    from portal.api.console.views import api as console_api

    assert subscriptions.api is console_api and quotas.api is console_api
    assert team.api is console_api
    assert billing_subscriptions.api is billing_api

    for api in (billing_api, console_api, console_catalog_api, sellers_api, accounts_api):
        app.register_blueprint(api.blueprint)
