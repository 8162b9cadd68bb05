"""Forms of the tenant settings pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

SCOPE_CHOICES = [
    SelectChoice("billing:read", _l("Read billing data")),
    SelectChoice("billing:write", _l("Read and change billing data")),
]


class CreateTokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    access = SelectField(_l("Access"), choices=SCOPE_CHOICES, validators=[DataRequired()])


class RevokeTokenForm(FlaskForm):
    """Only the CSRF token; the token to revoke is in the URL."""
