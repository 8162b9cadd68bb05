"""The billing profile: who the tenant's invoices are addressed to, and how it wants them."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _

from portal.extensions import db
from portal.tenancy.models import BillingProfile, EInvoiceFormat
from portal.tenancy.profiles import (
    ProfileInput,
    ProfileInvalid,
    country_name,
    get_billing_profile,
    upsert_billing_profile,
    validate_profile,
)
from portal.web.guards import can, tenant_view
from portal.web.htmx import render_page, wants_fragment
from portal.web.profile.forms import EINVOICE_LABELS, ProfileForm, language_name

bp = Blueprint("profile", __name__)

#: Fields whose message depends on another one: when that one changes they are checked again,
#: but only when they hold something (nobody is told off for a field they have not reached,
#: and what someone is typing right now is never replaced).
DEPENDENTS: dict[str, tuple[str, ...]] = {
    "country": ("vat_id",),
    "billing_email": ("cc_emails",),
    "tax_exempt": ("tax_exemption_reason",),
    "einvoice_format": ("buyer_reference",),
    "peppol_endpoint_id": ("peppol_endpoint_scheme",),
    "peppol_endpoint_scheme": ("peppol_endpoint_id",),
}


def _languages() -> list[str]:
    return current_app.config["LANGUAGES"]


def _form(**kwargs) -> ProfileForm:
    return ProfileForm(locale=get_locale(), languages=_languages(), **kwargs)


def _blank_form_data() -> dict:
    locale = str(get_locale() or "")
    return {
        "language": locale if locale in _languages() else _languages()[0],
        "einvoice_format": EInvoiceFormat.NONE.value,
    }


def _render(profile: BillingProfile | None, form: ProfileForm | None):
    """The page, or its fragment for htmx (which then shows the flashed messages itself)."""
    return render_page(
        "profile/page.html",
        "profile/_profile.html",
        profile=profile,
        form=form,
        show_flashes=wants_fragment(),
        country_label=lambda code: country_name(code, get_locale()),
        einvoice_label=lambda value: EINVOICE_LABELS[EInvoiceFormat(value)],
        language_label=language_name,
    )


@bp.get("/billing-profile")
@tenant_view()
def show():
    """The billing profile: a form for those who manage billing, read-only for viewers."""
    profile = get_billing_profile(db.session, g.tenant)
    form = None
    if can("manage_billing"):
        data = (
            ProfileForm.data_from(ProfileInput.from_profile(profile))
            if profile is not None
            else _blank_form_data()
        )
        form = _form(data=data)
    return _render(profile, form)


@bp.post("/billing-profile")
@tenant_view("manage_billing")
def update():
    """Save the billing profile, or show the form again with a message at each bad field.

    CSRFProtect checks the token of every POST before this runs.
    """
    form = _form()
    try:
        upsert_billing_profile(db.session, g.tenant, form.to_input(), languages=_languages())
    except ProfileInvalid as invalid:
        form.show_errors(invalid.errors)
        # 200, not 422: htmx 2 does not swap 4xx responses.
        return _render(get_billing_profile(db.session, g.tenant), form)
    flash(_("Billing profile saved."), "success")
    return redirect(url_for("profile.show"), code=303)


@bp.post("/billing-profile/validate")
@tenant_view("manage_billing")
def validate_field():
    """Check the whole form, answer with the cell of ``?field=`` and its message (htmx).

    Cells of fields that depend on it come along as out-of-band swaps. Always 200, so
    htmx swaps the cell whether or not it has an error.
    """
    name = request.args.get("field", "")
    if name not in ProfileInput.field_names():
        abort(400)
    form = _form()
    _, errors = validate_profile(form.to_input(), tenant=g.tenant, languages=_languages())
    others = [other for other in DEPENDENTS.get(name, ()) if form.has_value(other)]
    form.show_errors(errors, only=[name, *others])
    return render_template("profile/_fields.html", form=form, name=name, others=others)
