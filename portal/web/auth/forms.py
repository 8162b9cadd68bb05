"""Forms of login, password reset, tenant switching and language choice."""

from __future__ import annotations

import wtforms
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, StopValidation

from portal.api.core import unstorable_text
from portal.tenancy.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

#: A choice of a SelectField; wtforms 3.3 has it, its type stubs (3.2) do not yet.
SelectChoice = wtforms.SelectChoice  # type: ignore[attr-defined]


class StorableText:
    """Refuse text with a NUL character or a lone surrogate (no column or hash input takes
    it) with a message at the field, before the field's other checks run."""

    def __call__(self, form, field) -> None:
        if isinstance(field.data, str) and unstorable_text(field.data):
            raise StopValidation(_l("Remove the NUL character from this field."))


class AuthForm(FlaskForm):
    """A form of this area: every visible field checks :class:`StorableText` first. Hidden
    fields show no message; their views vet them (``next`` is followed only when safe, a
    tenant id only when it is one of the user's)."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            field = unbound_field.bind(form=form, **options)
            if not issubclass(unbound_field.field_class, HiddenField):
                field.validators = [StorableText(), *field.validators]
            return field


class LoginForm(AuthForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    remember = BooleanField(_l("Keep me signed in"))
    next = HiddenField()


class ForgotPasswordForm(AuthForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])


class ResetPasswordForm(AuthForm):
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    confirm = PasswordField(
        _l("Repeat new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("Passwords do not match."))],
    )


class SwitchTenantForm(AuthForm):
    tenant = HiddenField(validators=[DataRequired()])


class LanguageForm(AuthForm):
    language = SelectField(
        _l("Language"),
        choices=[SelectChoice("en", "English"), SelectChoice("de", "Deutsch")],
        validators=[DataRequired()],
    )
