"""Admin pages of a company's team: invite someone, resend or revoke an invitation."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from portal.extensions import db
from portal.ops.audit import AdminActionRefused
from portal.tenancy.errors import TeamRefused
from portal.tenancy.invitations import (
    find_invitation,
    invite,
    resend_invitation,
    revoke_invitation,
)
from portal.tenancy.models import Invitation, Tenant
from portal.web.admin.blueprint import bp
from portal.web.admin.common import current_actor, load_company, refused
from portal.web.admin.companies import _company_page
from portal.web.guards import admin_view


def _invitation(tenant: Tenant, invitation_id: str) -> Invitation:
    invitation = find_invitation(db.session, tenant, invitation_id)
    if invitation is None:
        abort(404)
    return invitation


def _back(tenant: Tenant) -> str:
    return url_for("admin.company", company_id=tenant.public_id, _anchor="team-title")


def _refused(exc: TeamRefused, tenant: Tenant):
    return refused(AdminActionRefused(exc.code, exc.message), _back(tenant))


@bp.post("/companies/<company_id>/invitations")
@admin_view
def invite_member(company_id: str):
    """Invite someone to the company by e-mail; errors re-render the page at the fields."""
    tenant = load_company(company_id)
    values = {"email": request.form.get("email", ""), "role": request.form.get("role", "")}
    try:
        invitation = invite(
            db.session, tenant, email=values["email"], role=values["role"], actor=current_actor()
        )
    except TeamRefused as exc:
        db.session.rollback()
        if exc.field is None:
            return _refused(exc, tenant)
        return _company_page(
            load_company(company_id),
            invite={"values": values, "errors": {exc.field: exc.message}},
        )
    flash(_("Invitation sent to %(email)s.", email=invitation.email), "success")
    return redirect(_back(tenant), code=303)


@bp.post("/companies/<company_id>/invitations/<invitation_id>/resend")
@admin_view
def resend_member_invitation(company_id: str, invitation_id: str):
    """Send the invitation again with a new link; the old link stops working."""
    tenant = load_company(company_id)
    invitation = _invitation(tenant, invitation_id)
    try:
        resend_invitation(db.session, tenant, invitation, actor=current_actor())
    except TeamRefused as exc:
        return _refused(exc, tenant)
    flash(_("Invitation sent again to %(email)s.", email=invitation.email), "success")
    return redirect(_back(tenant), code=303)


@bp.post("/companies/<company_id>/invitations/<invitation_id>/revoke")
@admin_view
def revoke_member_invitation(company_id: str, invitation_id: str):
    """Withdraw the invitation: its link never works again."""
    tenant = load_company(company_id)
    invitation = _invitation(tenant, invitation_id)
    try:
        revoke_invitation(db.session, tenant, invitation, actor=current_actor())
    except TeamRefused as exc:
        return _refused(exc, tenant)
    flash(_("Invitation to %(email)s withdrawn.", email=invitation.email), "success")
    return redirect(_back(tenant), code=303)
