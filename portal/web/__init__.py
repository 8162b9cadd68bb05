"""HTML side of the portal: blueprints, error pages and security headers."""

from __future__ import annotations

import importlib
import pkgutil
import secrets
from pathlib import Path

from flask import Flask, g, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, UnprocessableEntity

from portal.api.core import (
    http_error_response,
    is_api_request,
    server_error_response,
    unstorable_text,
)
from portal.extensions import db, login_manager
from portal.tenancy.services import load_session_user
from portal.web.formatting import register_filters
from portal.web.guards import can, load_tenant_context

#: Blueprints that deal with unstorable text where they read it: the sign-in forms and the
#: billing profile refuse it with a message at the field (portal.web.auth.forms,
#: portal.tenancy.profiles.validate_profile), the invoice list drops it from its search
#: (portal.invoices.queries), each webhook's provider refuses what it cannot parse.
FIELD_CHECKED_BLUEPRINTS = frozenset({"auth", "profile", "invoices", "webhooks", "account"})


def unstorable_field() -> str | None:
    """The first query or form field of the request holding a NUL (or a lone surrogate),
    which no text column stores; None when there is none."""
    sources = [request.args]
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sources.append(request.form)
    for source in sources:
        for name, values in source.lists():
            if any(unstorable_text(text) for text in (name, *values)):
                return name.replace("\x00", "")
    return None


def discover_blueprints() -> list:
    """The ``bp`` of every ``portal/web/<area>/views.py``, in name order.

    Each page area is a package with its own blueprint; finding them here keeps adding an
    area a change to that area only.
    """
    package_dir = Path(__file__).resolve().parent
    blueprints = []
    for info in sorted(pkgutil.iter_modules([str(package_dir)]), key=lambda i: i.name):
        if info.ispkg and (package_dir / info.name / "views.py").exists():
            module = importlib.import_module(f"{__name__}.{info.name}.views")
            blueprints.append(module.bp)
    return blueprints


def register_web(app: Flask) -> None:
    """Register blueprints, hooks and error pages on ``app``."""
    for blueprint in discover_blueprints():
        app.register_blueprint(blueprint)

    register_filters(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    login_manager.login_message = None

    @login_manager.user_loader
    def load_user(session_id: str):
        return load_session_user(db.session, session_id)

    @app.before_request
    def _request_context() -> None:
        g.csp_nonce = secrets.token_urlsafe(16)
        if request.endpoint != "static":
            load_tenant_context()

    @app.before_request
    def _refuse_unstorable_text() -> None:
        """Pages refuse a NUL in any field (422) instead of failing on it in the database,
        except where the form itself says so at the field (FIELD_CHECKED_BLUEPRINTS)."""
        if request.endpoint in (None, "static") or is_api_request():
            return
        if request.blueprint in FIELD_CHECKED_BLUEPRINTS:
            return
        if (name := unstorable_field()) is not None:
            raise UnprocessableEntity(
                _(
                    "The field “%(name)s” contains a character that cannot be stored "
                    "(a NUL character). Remove it and try again.",
                    name=name,
                )
            )

    @app.context_processor
    def _template_globals() -> dict:
        return {
            "csp_nonce": g.get("csp_nonce", ""),
            "current_tenant": g.get("tenant"),
            "current_membership": g.get("membership"),
            "memberships": g.get("memberships", []),
            "can": can,
            "current_locale": str(get_locale() or "en"),
        }

    @app.after_request
    def _security_headers(response):
        nonce = g.get("csp_nonce", "")
        script_src = f"'self' 'nonce-{nonce}'"
        connect_src = "'self'"
        frame_src = "'none'"
        if app.config.get("STRIPE_PUBLISHABLE_KEY"):
            # Stripe.js and its iframes, only when Stripe is configured (DESIGN "Security");
            # the origins follow STRIPE_JS_URL / STRIPE_API_BASE (localstripe in development).
            from portal.payments.providers.stripe import csp_sources

            sources = csp_sources(app.config)
            script_src += " " + sources["script"]
            connect_src += " " + sources["connect"]
            frame_src = sources["frame"]
        form_action = "'self'"
        if app.config.get("MOLLIE_API_KEY") or app.config.get("STRIPE_SECRET_KEY"):
            # Redirect flows (Mollie checkout) leave through a form's 303: allow that origin.
            from portal.payments.providers import configured_providers

            for provider in configured_providers():
                for origin in provider.form_action_origins():
                    form_action += f" {origin}"
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; script-src {script_src}; style-src 'self'; "
            f"img-src 'self' data:; connect-src {connect_src}; frame-src {frame_src}; "
            f"object-src 'none'; base-uri 'self'; form-action {form_action}; "
            "frame-ancestors 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        hsts_max_age = int(app.config.get("HSTS_MAX_AGE") or 0)
        if hsts_max_age > 0 and not (app.debug or app.testing):
            # Browsers only heed it over HTTPS, so it is harmless on a plain-HTTP request.
            response.headers.setdefault("Strict-Transport-Security", f"max-age={hsts_max_age}")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):
        return render_template("errors/error.html", code=400, error=error), 400

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        if is_api_request():  # JSON surfaces answer in their own error shape
            return http_error_response(error)
        response = error.get_response()
        response.data = render_template("errors/error.html", code=error.code, error=error)
        response.content_type = "text/html; charset=utf-8"
        return response

    @app.errorhandler(Exception)
    def _server_error(error: Exception):
        db.session.rollback()
        if is_api_request():
            return server_error_response()
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return render_template("errors/error.html", code=500, error=None), 500
