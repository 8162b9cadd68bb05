"""HTML side of the portal: blueprints, error pages and security headers."""

from __future__ import annotations

import importlib
import pkgutil
import secrets
from pathlib import Path

from flask import Flask, g, render_template, request
from flask_babel import get_locale
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.api.core import http_error_response, is_api_request, server_error_response
from portal.extensions import db, login_manager
from portal.tenancy.services import load_session_user
from portal.web.formatting import register_filters
from portal.web.guards import can, load_tenant_context


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
