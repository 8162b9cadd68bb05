"""Forms of the tenant settings pages."""

from __future__ import annotations

import wtforms
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

#: A choice of a SelectField; wtforms 3.3 has it, its type stubs (3.2) do not yet.
SelectChoice = wtforms.SelectChoice  # type: ignore[attr-defined]

SCOPE_CHOICES = [
    SelectChoice("billing:read", _l("Read billing data")),
    SelectChoice("billing:write", _l("Read and change billing data")),
]


class CreateTokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    access = SelectField(_l("Access"), choices=SCOPE_CHOICES, validators=[DataRequired()])


class RevokeTokenForm(FlaskForm):
    """Only the CSRF token; the token to revoke is in the URL."""
