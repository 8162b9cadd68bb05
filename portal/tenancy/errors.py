"""Errors raised by tenancy services."""


class TenancyError(Exception):
    """Base class of tenancy errors."""


class EmailTaken(TenancyError):
    """Another user already has this e-mail address."""


class WeakPassword(TenancyError):
    """The password does not meet the minimum requirements."""


class InvalidResetToken(TenancyError):
    """A password-reset token is malformed, expired, or already used."""


class TeamRefused(TenancyError):
    """A change of a team (an invitation, a membership) that the rules do not allow.

    :ivar code: stable machine-readable reason for the APIs, e.g. ``last_owner``.
    :ivar message: English sentence for people; pages show its translation.
    :ivar field: the input at fault (``email``, ``role``), or None for the whole request.
    """

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class InvitationUnusable(TenancyError):
    """An invitation link that opens nothing; ``status`` is the HTTP answer.

    :ivar reason: "invalid" (tampered, malformed or unknown: 404), "expired", "revoked",
        "replaced" (a newer link was sent) or "used" (accepted already), all 410.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.status = 404 if reason == "invalid" else 410
