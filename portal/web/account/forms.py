"""Forms of the account page: name and language, e-mail change, password change.

The forms render the fields and carry the CSRF token; the rules live in
portal.tenancy.accounts, whose messages are put on the fields here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import wtforms
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField

from portal.tenancy.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from portal.web.profile.forms import language_name

#: A choice of a SelectField; wtforms 3.3 has it, its type stubs (3.2) do not yet.
SelectChoice = wtforms.SelectChoice  # type: ignore[attr-defined]


def translate(message: str) -> str:
    """A service message (portal.tenancy.profiles.Message) in the reader's language."""
    msgid = getattr(message, "msgid", None)
    if msgid is None:
        return message
    return gettext(msgid, **getattr(message, "params", {}))


class AccountForm(FlaskForm):
    """One form of the page; the service's messages go on its fields."""

    #: The service's field name → this form's field name, where they differ.
    FIELDS: Mapping[str, str] = {}

    def show_errors(self, errors: Mapping[str, str]) -> None:
        """Put the service's messages on their fields, translated."""
        for name, message in errors.items():
            self[self.FIELDS.get(name, name)].errors = [translate(message)]


class DetailsForm(AccountForm):
    """Name and language."""

    name = StringField(
        _l("Name"), render_kw={"autocomplete": "name", "required": True, "maxlength": 200}
    )
    language = SelectField(
        _l("Language"),
        validate_choice=False,
        description=_l("The portal's pages and your e-mails about the account."),
        # "language" is taken by the page footer's language picker.
        id="account-language",
    )

    def __init__(self, *args, languages: Iterable[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.language.choices = [SelectChoice(code, language_name(code)) for code in languages]


class EmailChangeForm(AccountForm):
    """The new address and the current password."""

    email = EmailField(
        _l("New e-mail address"),
        description=_l("We send a link there; your address changes when you open it."),
        render_kw={"autocomplete": "email", "required": True, "maxlength": 254},
    )
    password = PasswordField(
        _l("Current password"),
        id="email-password",
        render_kw={"autocomplete": "current-password", "required": True},
    )


class PasswordChangeForm(AccountForm):
    """The current password and the new one, twice."""

    current_password = PasswordField(
        _l("Current password"),
        render_kw={"autocomplete": "current-password", "required": True},
    )
    new_password = PasswordField(
        _l("New password"),
        description=_l("At least %(num)d characters.", num=MIN_PASSWORD_LENGTH),
        render_kw={
            "autocomplete": "new-password",
            "required": True,
            "maxlength": MAX_PASSWORD_LENGTH,
        },
    )
    repeat = PasswordField(
        _l("Repeat new password"),
        render_kw={"autocomplete": "new-password", "required": True},
    )


class ConfirmEmailForm(FlaskForm):
    """The button that applies a confirmation link (a GET never changes the address: mail
    scanners open links before people do)."""
