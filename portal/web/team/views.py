"""The Team page (members, pending invitations, invite) and the invitation link's page.

Everyone of the company sees the team; only owners ("manage_members") see and use the
forms. The invitation page needs no login: the link is the credential. A new person sets
a name and password, someone with an account signs in (or is signed in already), and
either joins with the invitation's role. A link that no longer works shows why, and
creates nothing.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_user

from portal.db import load_for_tenant
from portal.extensions import db, limiter
from portal.ops.audit import Actor
from portal.tenancy.errors import InvitationUnusable, TeamRefused, WeakPassword
from portal.tenancy.invitations import (
    Accepted,
    accept_as_new_user,
    accept_as_user,
    invite,
    pending_invitations,
    resend_invitation,
    resolve_invitation,
    revoke_invitation,
)
from portal.tenancy.models import Invitation, Membership
from portal.tenancy.services import authenticate, get_user_by_email
from portal.tenancy.team import (
    change_role,
    find_member,
    owner_count,
    remove_member,
    team_members,
    transfer_ownership,
)
from portal.web.guards import TENANT_SESSION_KEY, load_tenant_context, tenant_view
from portal.web.htmx import render_page
from portal.web.team.forms import ConfirmForm, InviteForm, NewAccountForm, SignInForm

bp = Blueprint("team", __name__)


def _actor() -> Actor:
    return Actor(
        label=current_user.email,
        user_id=current_user.id,
        ip_address=request.remote_addr,
        request_id=request.headers.get("X-Request-Id"),
    )


def _page(form: InviteForm | None = None):
    return render_page(
        "team/page.html",
        "team/_team.html",
        members=team_members(db.session, g.tenant),
        invitations=pending_invitations(db.session, g.tenant),
        owners=owner_count(db.session, g.tenant),
        form=form or InviteForm(formdata=None),
    )


def _refused(exc: TeamRefused):
    """A refused change: nothing it wrote is kept; its reason is shown on the Team page."""
    db.session.rollback()
    flash(_(exc.message), "error")
    return redirect(url_for("team.index"), code=303)


def _member(member_id: str) -> Membership:
    """The current company's member by user id; anyone else's (or a bad id) is 404."""
    membership = find_member(db.session, g.tenant, member_id)
    if membership is None:
        abort(404)
    return membership


@bp.get("/team")
@tenant_view()
def index():
    """Members with role and last sign-in, pending invitations and (owners) the forms."""
    return _page()


@bp.post("/team/invitations")
@tenant_view("manage_members")
def create_invitation():
    """Invite someone by e-mail; errors re-render the form at its fields (200)."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            invitation = invite(
                db.session, g.tenant, email=form.email.data, role=form.role.data, actor=_actor()
            )
        except TeamRefused as exc:
            db.session.rollback()
            target = getattr(form, exc.field or "email", form.email)
            target.errors = [*target.errors, _(exc.message)]
        else:
            flash(_("Invitation sent to %(email)s.", email=invitation.email), "success")
            return redirect(url_for("team.index"), code=303)
    return _page(form)


@bp.post("/team/invitations/<invitation_id>/resend")
@tenant_view("manage_members")
def resend(invitation_id: str):
    """Send the invitation again with a new link; the old link stops working."""
    invitation = load_for_tenant(db.session, Invitation, invitation_id, g.tenant)
    if ConfirmForm().validate_on_submit():
        try:
            resend_invitation(db.session, g.tenant, invitation, actor=_actor())
        except TeamRefused as exc:
            return _refused(exc)
        flash(_("Invitation sent again to %(email)s.", email=invitation.email), "success")
    return redirect(url_for("team.index"), code=303)


@bp.post("/team/invitations/<invitation_id>/revoke")
@tenant_view("manage_members")
def revoke(invitation_id: str):
    """Withdraw the invitation: its link never works again."""
    invitation = load_for_tenant(db.session, Invitation, invitation_id, g.tenant)
    if ConfirmForm().validate_on_submit():
        try:
            revoke_invitation(db.session, g.tenant, invitation, actor=_actor())
        except TeamRefused as exc:
            return _refused(exc)
        flash(_("Invitation to %(email)s withdrawn.", email=invitation.email), "success")
    return redirect(url_for("team.index"), code=303)


@bp.post("/team/members/<member_id>/role")
@tenant_view("manage_members")
def update_role(member_id: str):
    """Give a member another role (the last owner keeps theirs)."""
    membership = _member(member_id)
    if ConfirmForm().validate_on_submit():
        try:
            change_role(
                db.session, g.tenant, membership, request.form.get("role", ""), actor=_actor()
            )
        except TeamRefused as exc:
            return _refused(exc)
        flash(_("%(name)s's role is changed.", name=membership.user.name), "success")
    return redirect(url_for("team.index"), code=303)


@bp.post("/team/members/<member_id>/remove")
@tenant_view("manage_members")
def remove(member_id: str):
    """Take a member out of the company (never the last owner)."""
    membership = _member(member_id)
    if ConfirmForm().validate_on_submit():
        try:
            user = remove_member(db.session, g.tenant, membership, actor=_actor())
        except TeamRefused as exc:
            return _refused(exc)
        flash(_("%(name)s is no longer a member.", name=user.name), "success")
        if user.id == current_user.id:  # left the company: it is no longer theirs to see
            session.pop(TENANT_SESSION_KEY, None)
            return redirect(url_for("overview.index"), code=303)
    return redirect(url_for("team.index"), code=303)


@bp.post("/team/members/<member_id>/transfer")
@tenant_view("manage_members")
def transfer(member_id: str):
    """Make the member an owner; the acting owner becomes a billing admin."""
    membership = _member(member_id)
    if ConfirmForm().validate_on_submit():
        try:
            transfer_ownership(db.session, g.tenant, membership, actor=_actor())
        except TeamRefused as exc:
            return _refused(exc)
        flash(_("%(name)s is now an owner.", name=membership.user.name), "success")
    return redirect(url_for("team.index"), code=303)


# --- the invitation link ---------------------------------------------------------------------


def _accept_limit() -> str:
    return current_app.config["RATELIMIT_LOGIN"]


def _private(response):
    """The token is in the URL: no cache keeps the page, no Referer carries it away."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _unusable(error: InvitationUnusable):
    db.session.rollback()
    response = render_page("team/invitation_unusable.html", reason=error.reason)
    response.status_code = error.status
    return _private(response)


def _joined(result: Accepted):
    """Sign the invitee in (a fresh session) in the company they joined."""
    locale = session.get("locale")
    if not (current_user.is_authenticated and current_user.id == result.user.id):
        session.clear()
        if locale:
            session["locale"] = locale
        login_user(result.user)
    session[TENANT_SESSION_KEY] = str(result.invitation.tenant.public_id)
    load_tenant_context()
    flash(_("Welcome to %(company)s.", company=result.invitation.tenant.name), "success")
    return redirect(url_for("overview.index"), code=303)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@limiter.limit(_accept_limit, methods=["POST"])
def accept(token: str):
    """Open an invitation link: join as a new person, or sign in (if not yet) and join."""
    try:
        invitation = resolve_invitation(db.session, token)
    except InvitationUnusable as exc:
        return _unusable(exc)
    account = get_user_by_email(db.session, invitation.email)
    signed_in = current_user.is_authenticated
    if signed_in and current_user.email != invitation.email:
        return _private(render_page("team/accept.html", invitation=invitation, mode="other"))
    form: ConfirmForm | SignInForm | NewAccountForm
    if signed_in:
        mode, form = "join", ConfirmForm()
    elif account is not None:
        mode, form = "sign_in", SignInForm()
    else:
        mode, form = "new", NewAccountForm()
    if form.validate_on_submit():
        try:
            if isinstance(form, NewAccountForm):
                result = accept_as_new_user(
                    db.session,
                    token,
                    name=form.name.data,
                    password=form.password.data,
                    locale=str(get_locale() or "en"),
                )
                return _joined(result)
            user = (
                current_user._get_current_object()
                if signed_in
                else authenticate(db.session, invitation.email, form.password.data or "")
            )
            if user is None:
                assert isinstance(form, SignInForm)
                form.password.errors = [*form.password.errors, _("The password is wrong.")]
            else:
                return _joined(accept_as_user(db.session, token, user))
        except InvitationUnusable as exc:
            return _unusable(exc)
        except WeakPassword as exc:
            db.session.rollback()
            assert isinstance(form, NewAccountForm)
            form.password.errors = [*form.password.errors, _(str(exc))]
        except TeamRefused as exc:
            db.session.rollback()
            field = getattr(form, exc.field or "", None)
            if field is not None:
                field.errors = [*field.errors, _(exc.message)]
            else:
                flash(_(exc.message), "error")
    return _private(render_page("team/accept.html", invitation=invitation, mode=mode, form=form))
