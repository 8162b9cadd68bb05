"""What the company page's Team panel shows: members, pending invitations, the invite form."""

from __future__ import annotations

from typing import Any

from portal.extensions import db
from portal.tenancy.invitations import pending_invitations
from portal.tenancy.models import Tenant
from portal.tenancy.profiles import get_billing_profile
from portal.tenancy.team import team_members
from portal.web.admin.common import translated


def team_panel(tenant: Tenant, invite: dict | None = None) -> dict[str, Any]:
    """The panel's context. ``invite`` is a posted form to show again with its errors:
    ``{"values": {...}, "errors": {field: English message}}``. Without one, the form
    suggests the billing contact's address when they are not in the team yet."""
    members = team_members(db.session, tenant)
    invitations = pending_invitations(db.session, tenant)
    if invite is None:
        profile = get_billing_profile(db.session, tenant)
        taken = {m.user.email for m in members} | {i.email for i in invitations}
        contact = profile.billing_email.lower() if profile and profile.billing_email else ""
        invite = {"values": {"email": "" if contact in taken else contact, "role": "owner"}}
    return {
        "team_members": members,
        "team_invitations": invitations,
        "invite_values": invite.get("values", {}),
        "invite_errors": {k: translated(v) for k, v in invite.get("errors", {}).items()},
    }
