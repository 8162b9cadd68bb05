"""Errors raised by tenancy services."""


class TenancyError(Exception):
    """Base class of tenancy errors."""


class EmailTaken(TenancyError):
    """Another user already has this e-mail address."""


class WeakPassword(TenancyError):
    """The password does not meet the minimum requirements."""


class InvalidResetToken(TenancyError):
    """A password-reset token is malformed, expired, or already used."""
