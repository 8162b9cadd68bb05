"""Login, logout, password reset, tenant switching and language choice."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from portal.extensions import db, limiter
from portal.notifications.emails import send_password_reset_email
from portal.tenancy.errors import InvalidResetToken, WeakPassword
from portal.tenancy.services import (
    authenticate,
    get_user_by_email,
    set_password,
    user_for_reset_token,
)
from portal.web.auth.forms import (
    ForgotPasswordForm,
    LanguageForm,
    LoginForm,
    ResetPasswordForm,
    SwitchTenantForm,
)
from portal.web.guards import TENANT_SESSION_KEY, load_tenant_context
from portal.web.htmx import render_page

bp = Blueprint("auth", __name__)


@bp.after_request
def _no_store(response):
    """Sign-in pages carry credentials, reset tokens and CSRF tokens: no cache keeps them."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target or any(ord(char) < 32 or char == "\x7f" for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _home_url() -> str:
    if g.get("tenant") is None and current_user.is_platform_admin:
        return url_for("admin.index")
    return url_for("overview.index")


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _reset_limit() -> str:
    return current_app.config["RATELIMIT_PASSWORD_RESET"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    """Show the login form and log a user in."""
    if current_user.is_authenticated:
        return redirect(_home_url())
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = authenticate(db.session, form.email.data or "", form.password.data or "")
        if user is None:
            form.password.errors = [*form.password.errors, _("E-mail or password is wrong.")]
        else:
            session.clear()
            login_user(user, remember=form.remember.data)
            load_tenant_context()
            return redirect(_safe_next(form.next.data) or _home_url(), code=303)
    return render_page("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Log out and forget the session."""
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_reset_limit, methods=["POST"])
def forgot_password():
    """Send a password-reset link. Answers the same whether or not the e-mail exists."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        user = get_user_by_email(db.session, form.email.data or "")
        if user is not None and user.is_active:
            send_password_reset_email(db.session, user)
        flash(
            _(
                "If an account exists for %(email)s, we have sent a link to reset its password.",
                email=form.email.data,
            ),
            "info",
        )
        return redirect(url_for("auth.login"), code=303)
    return render_page("auth/forgot.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_reset_limit, methods=["POST"])
def reset_password(token: str):
    """Choose a new password with a token from the reset e-mail."""
    try:
        user = user_for_reset_token(
            db.session,
            token,
            current_app.config["SECRET_KEY"],
            current_app.config["PASSWORD_RESET_MAX_AGE"],
        )
    except InvalidResetToken:
        flash(_("This reset link is invalid or has expired. Ask for a new one."), "error")
        return redirect(url_for("auth.forgot_password"), code=303)
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            set_password(user, form.password.data or "")
        except WeakPassword as exc:
            form.password.errors = [*form.password.errors, str(exc)]
        else:
            logout_user()
            session.clear()
            flash(_("Your password has been changed. Sign in with the new one."), "success")
            return redirect(url_for("auth.login"), code=303)
    return render_page("auth/reset.html", form=form, token=token)


@bp.post("/tenants/switch")
@login_required
def switch_tenant():
    """Make another of the user's tenants the current one."""
    form = SwitchTenantForm()
    if not form.validate_on_submit():
        return redirect(url_for("overview.index"), code=303)
    for membership in g.memberships:
        if str(membership.tenant.public_id) == form.tenant.data:
            session[TENANT_SESSION_KEY] = form.tenant.data
            return redirect(url_for("overview.index"), code=303)
    abort(404)


@bp.post("/language")
def set_language():
    """Remember the chosen language (on the user when logged in, else in the session)."""
    form = LanguageForm()
    if form.validate_on_submit():
        session["locale"] = form.language.data
        if current_user.is_authenticated:
            current_user.locale = form.language.data
    return redirect(_safe_next(request.form.get("next")) or url_for("overview.index"), code=303)
