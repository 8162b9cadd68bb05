"""The account surface's answers to the exceptions its services raise (its error map)."""

from __future__ import annotations

import socket

from pydantic.alias_generators import to_camel

from portal.api.core import ApiError, ErrorMap, error_entry
from portal.domain import tax
from portal.payments.providers import ProviderError
from portal.payments.refunds import RefundRefused
from portal.tenancy.profiles import ProfileInvalid
from portal.usage.services import ConsumptionConflict


def _is_timeout(exc: BaseException) -> bool:
    """Whether a provider failure was a timeout (504) rather than no answer at all (502)."""
    seen: BaseException | None = exc
    while seen is not None:
        if (
            isinstance(seen, TimeoutError | socket.timeout)
            or "timeout" in type(seen).__name__.lower()
            or "timed out" in str(seen).lower()
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def provider_failure(exc: ProviderError) -> ApiError:
    """A provider's failure as 504 (timeout), 502 (no usable answer) or 400 (refusal)."""
    if _is_timeout(exc):
        return ApiError(
            504, [error_entry(["provider"], "The payment provider timed out.", "timeout")]
        )
    if exc.code in ("provider_unavailable", "not_configured"):
        return ApiError(502, [error_entry(["provider"], exc.message, exc.code)])
    return ApiError(400, [error_entry(["provider"], exc.message, exc.code)])


def _profile_invalid(exc: ProfileInvalid) -> ApiError:
    return ApiError(
        400,
        [
            error_entry(["body", to_camel(name)], str(msg), "invalid")
            for name, msg in exc.errors.items()
        ],
    )


def _consumption_conflict(exc: ConsumptionConflict) -> ApiError:
    return ApiError(
        409, [error_entry(["body", "idempotencyKey"], exc.message, "idempotency_conflict")]
    )


#: The surface's map (``Api(errors=...)``).
ERRORS: ErrorMap = {
    ProfileInvalid: _profile_invalid,
    ConsumptionConflict: _consumption_conflict,
    RefundRefused: lambda exc: ApiError(
        400, [error_entry(["body", "amountMinor"], str(exc), "refund_refused")]
    ),
    ProviderError: provider_failure,
}

#: What ``tax.location_tax`` refuses, for the one operation that asks it.
LOCATION_TAX_ERRORS: ErrorMap = {
    ValueError: lambda exc: ApiError(
        400, [error_entry(["query", "country"], str(exc), "invalid_country")]
    ),
    tax.UnknownRate: lambda exc: ApiError(
        404, [error_entry(["query", "country"], str(exc), "no_rates")]
    ),
}
