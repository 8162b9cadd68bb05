"""Forms of the Team page and of the invitation page."""

from __future__ import annotations

import wtforms
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.tenancy.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from portal.tenancy.roles import Role
from portal.web.formatting import ROLE_LABELS

#: A choice of a SelectField; wtforms 3.3 has it, its type stubs (3.2) do not yet.
SelectChoice = wtforms.SelectChoice  # type: ignore[attr-defined]


def role_choices() -> list:
    return [SelectChoice(role.value, ROLE_LABELS[role]) for role in Role]


class InviteForm(FlaskForm):
    """Invite someone by e-mail with a role (the service checks the address)."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    role = SelectField(
        _l("Role"), choices=role_choices(), default=Role.VIEWER.value, validators=[DataRequired()]
    )


class NewAccountForm(FlaskForm):
    """A new person accepts: their name and a password."""

    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)])
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    confirm = PasswordField(
        _l("Repeat password"),
        validators=[DataRequired(), EqualTo("password", message=_l("Passwords do not match."))],
    )


class SignInForm(FlaskForm):
    """Someone with an account accepts by signing in with its password."""

    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class ConfirmForm(FlaskForm):
    """Only the CSRF token: a signed-in invitee joins with one click."""
