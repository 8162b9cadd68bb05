"""Admin ledger check: the last reconciliation's result and a button to run one now."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from portal.extensions import db
from portal.ledger.reconciliation import last_check, reconcile, record_check
from portal.web.admin.blueprint import bp
from portal.web.admin.common import current_actor
from portal.web.guards import admin_view
from portal.web.htmx import render_page

#: The reconciliation's names of what disagrees, as the page shows them.
WHAT_LABELS = {
    "amount paid": _l("amount paid"),
    "amount credited": _l("amount credited"),
    "refunded amount": _l("refunded amount"),
    "credited beyond the total": _l("credited beyond the total"),
    "invoice movement": _l("invoice movement"),
    "payment movement": _l("payment movement"),
    "reversal movement": _l("reversal movement"),
    "ledger movement": _l("ledger movement"),
    "void movements": _l("void movements"),
    "owed in the ledger": _l("owed in the ledger"),
    "ledger on a draft": _l("ledger on a draft"),
    "balance": _l("balance"),
}

#: The kinds of object a difference is about.
KIND_LABELS = {
    "invoice": _l("Invoice"),
    "credit note": _l("Credit note"),
    "payment": _l("Payment"),
    "refund": _l("Refund"),
    "tenant": _l("Company"),
}


@bp.get("/ledger")
@admin_view
def ledger():
    """The latest ledger check (by `flask check-ledger` or this page) and its differences."""
    check = last_check(db.session)
    return render_page(
        "admin/ledger.html",
        "admin/_ledger.html",
        check=check,
        result=check.result if check else None,
        what_labels=WHAT_LABELS,
        kind_labels=KIND_LABELS,
    )


@bp.post("/ledger/check")
@admin_view
def check_ledger():
    """Reconcile the whole ledger now and keep the result."""
    report = reconcile(db.session)
    record_check(db.session, report, by=current_actor().label)
    if report.clean:
        flash(_("The ledger agrees with every invoice, payment and credit note."), "success")
    else:
        count = len(report.differences)
        message = ngettext(
            "The ledger check found %(num)d difference.",
            "The ledger check found %(num)d differences.",
            count,
        )
        flash(message, "error")
    return redirect(url_for("admin.ledger"), code=303)
