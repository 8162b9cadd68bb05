"""Tenant settings: API tokens."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.db import load_for_tenant, scoped
from portal.extensions import db
from portal.tenancy.models import ApiToken, TokenKind
from portal.tenancy.services import create_api_token, revoke_api_token
from portal.web.guards import tenant_view
from portal.web.htmx import render_page
from portal.web.settings.forms import CreateTokenForm, RevokeTokenForm

bp = Blueprint("settings", __name__, url_prefix="/settings")


def _tokens() -> list[ApiToken]:
    return list(
        db.session.scalars(
            scoped(ApiToken, g.tenant).order_by(
                ApiToken.revoked_at.is_not(None), ApiToken.id.desc()
            )
        )
    )


def _scopes(access: str) -> list[str]:
    return ["billing:read", "billing:write"] if access == "billing:write" else ["billing:read"]


@bp.get("/tokens")
@tenant_view()
def tokens():
    """List the tenant's API tokens."""
    return render_page(
        "settings/tokens.html",
        "settings/_tokens.html",
        tokens=_tokens(),
        form=CreateTokenForm(),
        revoke_form=RevokeTokenForm(),
        new_token=None,
    )


@bp.post("/tokens")
@tenant_view("manage_tokens")
def create_token():
    """Create a token and show its secret once.

    Unlike other writes this answers 200 rather than 303: the secret must not travel
    through a redirect (the session cookie is signed, not encrypted).
    """
    form = CreateTokenForm()
    if not form.validate_on_submit():
        return render_page(
            "settings/tokens.html",
            "settings/_tokens.html",
            tokens=_tokens(),
            form=form,
            revoke_form=RevokeTokenForm(),
            new_token=None,
        )
    token, plaintext = create_api_token(
        db.session,
        kind=TokenKind.TENANT,
        tenant=g.tenant,
        name=(form.name.data or "").strip(),
        scopes=_scopes(form.access.data),
        created_by=current_user,
    )
    # The secret is shown on this response only; it is never stored in plain text.
    return render_page(
        "settings/tokens.html",
        "settings/_tokens.html",
        tokens=_tokens(),
        form=CreateTokenForm(formdata=None),
        revoke_form=RevokeTokenForm(),
        new_token=plaintext,
        created=token,
    )


@bp.post("/tokens/<token_id>/revoke")
@tenant_view("manage_tokens")
def revoke_token(token_id: str):
    """Revoke one of the tenant's tokens."""
    token = load_for_tenant(db.session, ApiToken, token_id, g.tenant)
    if RevokeTokenForm().validate_on_submit():
        revoke_api_token(token)
        flash(_("Token “%(name)s” revoked.", name=token.name), "success")
    return redirect(url_for("settings.tokens"), code=303)
