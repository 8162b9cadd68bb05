"""Admin actions on the signed links of an invoice: revoke them all by rotating its version.

A separate blueprint from the admin console so the console's pages can link here; the
route is a POST (CSRF-protected like every form) and ends in a 303 back to where it came
from when that is an admin page, else the console.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.db import parse_public_id
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.notifications.links import rotate_links
from portal.ops.models import AuditLogEntry
from portal.web.guards import admin_view

bp = Blueprint("admin_links", __name__, url_prefix="/admin")


class RotateLinksForm(FlaskForm):
    """Only the CSRF token; the invoice is in the URL."""


def _back() -> str:
    """The admin page the form was on (same site, under /admin), else the console."""
    target = request.form.get("next") or ""
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc and target.startswith("/admin"):
        return target
    return url_for("admin.index")


@bp.post("/invoices/<invoice_id>/links/rotate")
@admin_view
def rotate(invoice_id: str):
    """Revoke every signed link of the invoice; the next e-mail carries a new one."""
    uid = parse_public_id(invoice_id)
    invoice = (
        db.session.scalars(sa.select(Invoice).where(Invoice.public_id == uid)).first()
        if uid
        else None
    )
    if invoice is None:
        abort(404)
    if not RotateLinksForm().validate_on_submit():
        flash(_("The form expired. Reload the page and try again."), "error")
        return redirect(_back(), code=303)
    version = rotate_links(db.session, invoice, actor=current_user)
    db.session.add(
        AuditLogEntry(
            actor_user_id=current_user.id,
            actor_label=current_user.email,
            action="invoice.rotate_links",
            target_type="invoice",
            target_id=str(invoice.public_id),
            tenant_id=invoice.tenant_id,
            data={"version": version},
            ip_address=request.remote_addr,
        )
    )
    flash(_("Every link to invoice %(number)s has been revoked.", number=invoice.number), "success")
    return redirect(_back(), code=303)
