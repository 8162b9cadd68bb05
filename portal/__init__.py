"""Tenant Billing Portal: the application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.typing import ResponseReturnValue

from portal import extensions as ext  # not its names: `portal.db` is a module
from portal.config import ROOT, load_config


class Portal(Flask):
    """Flask with one unit of work per request, for pages and JSON APIs alike.

    Views and services only flush. When the view returns, the request's transaction commits
    if the answer is a success or a redirect (status below 400) and rolls back otherwise;
    when the view raises, it rolls back before the error handlers answer. So an answer of
    422 (form errors, the API's validation errors) or 409 never leaves a half-done write
    behind, and no view holds a commit/rollback pair of its own. A failing commit (a
    constraint the database enforces) raises here and is answered by the error handlers.
    """

    def dispatch_request(self) -> ResponseReturnValue:
        try:
            response = self.make_response(super().dispatch_request())
        except BaseException:
            ext.db.session.rollback()
            raise
        if response.status_code < 400:
            ext.db.session.commit()
        else:
            ext.db.session.rollback()
        return response


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the app.

    :param config: settings that override those read from the environment (tests).
    """
    app = Portal(
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

    # The app's parts are imported here, not at the top: every ``import portal.x`` runs this
    # module first, and these import the whole tree down to portal.x itself.
    from portal import models  # noqa: F401  (complete metadata before Alembic sees it)
    from portal.web.i18n import install_template_gettext, select_locale

    ext.db.init_app(app)
    ext.migrate.init_app(app, ext.db, directory=str(ROOT / "migrations"), render_as_batch=True)
    ext.login_manager.init_app(app)
    ext.csrf.init_app(app)
    ext.limiter.init_app(app)
    ext.babel.init_app(app, locale_selector=select_locale)
    install_template_gettext(app)
    ext.htmx.init_app(app)
    ext.queue.init_app(app)

    # The interfaces, for the same reason: each imports the whole tree below it.
    from portal.api import register_api
    from portal.cli import register_cli
    from portal.web import register_web
    from portal.wiring import connect

    connect()
    register_web(app)
    register_api(app)
    register_cli(app)
    return app
