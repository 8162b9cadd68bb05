"""The account page of every signed-in user: name, language, e-mail address, password."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from portal.extensions import db, limiter
from portal.ops.audit import Actor
from portal.tenancy.accounts import (
    EMAIL_CHANGE_MAX_AGE,
    AccountInvalid,
    EmailChangeRefused,
    change_password,
    confirm_email_change,
    read_email_change,
    request_email_change,
    update_account,
)
from portal.tenancy.models import User
from portal.web.account.forms import (
    ConfirmEmailForm,
    DetailsForm,
    EmailChangeForm,
    PasswordChangeForm,
)
from portal.web.htmx import render_page

bp = Blueprint("account", __name__)

#: The status of the answer to a confirmation link that changes nothing, by reason.
REFUSALS = {
    "invalid": 404,
    "expired": 410,
    "used": 410,
    "taken": 409,
    "other_user": 409,
}


@bp.after_request
def _no_store(response):
    """The page carries CSRF tokens, the confirmation page a token in its URL: not cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _link_limit() -> str:
    return current_app.config["RATELIMIT_SIGNED_LINKS"]


def _languages() -> list[str]:
    return current_app.config["LANGUAGES"]


def _max_age() -> int:
    return int(current_app.config.get("EMAIL_CHANGE_MAX_AGE", EMAIL_CHANGE_MAX_AGE))


def _user() -> User:
    """The signed-in user as the model object (services lock and change it)."""
    return current_user._get_current_object()


def _actor(user: User) -> Actor:
    return Actor(
        label=user.email,
        user_id=user.id,
        ip_address=request.remote_addr,
        request_id=request.headers.get("X-Request-Id"),
    )


def _sign_in_again(user: User) -> None:
    """Keep this session signed in after the auth version moved on (which ends the others).

    The session id carries the version; a "keep me signed in" cookie is renewed with it.
    """
    remember_cookie = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    login_user(user, remember=remember_cookie in request.cookies)


def _confirm_url(token: str) -> str:
    """The absolute URL of a confirmation link, on the portal's public address."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return base + url_for("account.confirm_email", token=token)


def _details_form(user: User, **kwargs) -> DetailsForm:
    if kwargs.get("formdata") is None:  # not posted: what is stored
        kwargs["data"] = {"name": user.name, "language": user.locale or _current_language()}
    return DetailsForm(languages=_languages(), **kwargs)


def _current_language() -> str:
    locale = str(get_locale() or "")
    return locale if locale in _languages() else _languages()[0]


def _render(
    *,
    details: DetailsForm | None = None,
    email_form: EmailChangeForm | None = None,
    password_form: PasswordChangeForm | None = None,
):
    user = _user()
    # Forms that were not posted start empty (the password fields always do).
    return render_page(
        "account/page.html",
        user=user,
        details=details or _details_form(user, formdata=None),
        email_form=email_form or EmailChangeForm(formdata=None),
        password_form=password_form or PasswordChangeForm(formdata=None),
        valid_hours=max(1, _max_age() // 3600),
    )


@bp.get("/account")
@login_required
def show():
    """The account page: name and language, e-mail address, password."""
    return _render()


@bp.post("/account")
@login_required
def update():
    """Save name and language; the next page is in the chosen language."""
    user = _user()
    form = _details_form(user, formdata=request.form)
    try:
        changed = update_account(
            db.session,
            user,
            name=form.name.data,
            locale=form.language.data,
            languages=_languages(),
            actor=_actor(user),
        )
    except AccountInvalid as invalid:
        form.show_errors(invalid.errors)
        # 200, not 422: htmx 2 does not swap 4xx responses.
        return _render(details=form)
    flash(_("Your account is saved.") if changed else _("Nothing changed."), "success")
    return redirect(url_for("account.show"), code=303)


@bp.post("/account/email")
@login_required
@limiter.limit(_login_limit, methods=["POST"])
def request_email():
    """Send a confirmation link to the new address (the current password is checked)."""
    user = _user()
    form = EmailChangeForm(formdata=request.form)
    try:
        sent = request_email_change(
            db.session,
            user,
            new_email=form.email.data,
            password=form.password.data,
            secret_key=current_app.config["SECRET_KEY"],
            confirm_url=_confirm_url,
            max_age=_max_age(),
            actor=_actor(user),
        )
    except AccountInvalid as invalid:
        form.show_errors(invalid.errors)
        form.password.data = ""
        return _render(email_form=form)
    flash(
        _(
            "We have sent a link to %(email)s. Your address changes when you open it; until "
            "then you sign in with %(current)s.",
            email=sent.to_addrs[0],
            current=user.email,
        ),
        "info",
    )
    return redirect(url_for("account.show"), code=303)


@bp.post("/account/password")
@login_required
@limiter.limit(_login_limit, methods=["POST"])
def password():
    """Change the password; every other session ends, this one stays signed in."""
    user = _user()
    form = PasswordChangeForm(formdata=request.form)
    try:
        change_password(
            db.session,
            user,
            current_password=form.current_password.data,
            new_password=form.new_password.data,
            repeat=form.repeat.data,
            actor=_actor(user),
        )
    except AccountInvalid as invalid:
        form.show_errors(invalid.errors)
        return _render(password_form=form)
    _sign_in_again(user)
    flash(
        _("Your password is changed. Every other session of your account is signed out."), "success"
    )
    return redirect(url_for("account.show"), code=303)


def _refused(refused: EmailChangeRefused):
    response = render_page(
        "account/confirm_refused.html", reason=refused.reason, email=refused.email
    )
    response.status_code = REFUSALS.get(refused.reason, 404)
    return response


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
@limiter.limit(_link_limit)
def confirm_email(token: str):
    """Show what a confirmation link changes; change it when its button is pressed.

    The token is the credential (it may be opened signed out, on another device); a GET
    changes nothing, as mail scanners open links before people do.
    """
    try:
        change = read_email_change(
            db.session, token, secret_key=current_app.config["SECRET_KEY"], max_age=_max_age()
        )
    except EmailChangeRefused as refused:
        return _refused(refused)
    signed_in = current_user.is_authenticated
    if signed_in and current_user.id != change.user.id:
        return _refused(EmailChangeRefused("other_user"))
    form = ConfirmEmailForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            user = confirm_email_change(db.session, change, actor=_actor(change.user))
        except EmailChangeRefused as refused:
            return _refused(refused)
        if signed_in:
            _sign_in_again(user)
            flash(_("Your e-mail address is now %(email)s.", email=user.email), "success")
            return redirect(url_for("account.show"), code=303)
        flash(
            _("Your e-mail address is now %(email)s. Sign in with it.", email=user.email),
            "success",
        )
        return redirect(url_for("auth.login"), code=303)
    return render_page("account/confirm.html", change=change, form=form, token=token)
