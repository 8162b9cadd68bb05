"""Tenant Billing Portal: the application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from portal.config import ROOT, load_config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the app.

    :param config: settings that override those read from the environment (tests).
    """
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.update(load_config())
    if config:
        app.config.update(config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if proxies := int(app.config.get("TRUSTED_PROXIES") or 0):
        # Behind that many reverse proxies: the client address (rate limits, logs, audit),
        # scheme, host and port come from their X-Forwarded-* headers, nothing else's.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )

    from portal import models  # noqa: F401  (complete metadata before Alembic sees it)
    from portal.extensions import babel, csrf, db, htmx, limiter, login_manager, migrate, queue
    from portal.web.i18n import install_template_gettext, select_locale

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    install_template_gettext(app)
    htmx.init_app(app)
    queue.init_app(app)

    from portal.api import register_api
    from portal.cli import register_cli
    from portal.notifications import outbox  # noqa: F401  (registers the delivery task)
    from portal.web import register_web

    register_web(app)
    register_api(app)
    register_cli(app)
    return app
