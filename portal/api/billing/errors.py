"""The tenant surface's answers to the exceptions its services raise (its error map)."""

from __future__ import annotations

from portal.api.core import ApiError, ErrorMap, error_entry
from portal.documents.formats import DocumentNotAvailable, UnknownFormat
from portal.notifications.delivery import InvoiceNotSendable
from portal.payments.methods import PaymentMethodRefused
from portal.payments.providers import ProviderError, UnknownProvider, UnsupportedMethodType
from portal.tenancy.profiles import ProfileInvalid

_NOT_SENDABLE = {
    "draft": "A draft cannot be sent; it is sent once the seller finalizes it.",
    "closed": "This invoice is paid, void or written off; there is nothing to send.",
    "no_recipient": "The billing profile has no billing e-mail address; add one first.",
    "einvoice_unavailable": "The e-invoice the billing profile asks for cannot be made:",
}


def _code(exc: Exception) -> str:
    return str(getattr(exc, "code", "") or "provider_error")


def provider_failure(*loc: str):
    """A provider's refusal located at ``loc``: unknown setups 404, an unreachable provider
    502, anything else (declined, not confirmed, bad input) 422."""

    def answer(exc: ProviderError) -> ApiError:
        code = _code(exc)
        status = {"not_found": 404, "provider_unavailable": 502}.get(code, 422)
        return ApiError(status, [error_entry(list(loc), str(exc), code)])

    return answer


def setup_failure(exc: ProviderError) -> ApiError:
    """A refused setup, located at the field it is about (the return URL or the type)."""
    field = "return_url" if "return" in _code(exc) else "method_type"
    return provider_failure("body", field)(exc)


def unknown_provider(where: str, name: str):
    """No provider of that name: 404 when the name is in the path, 422 in a body."""
    in_path = where == "path"

    def answer(exc: UnknownProvider) -> ApiError:
        return ApiError(
            404 if in_path else 422,
            [
                error_entry(
                    [where, name],
                    "No payment provider of that name is configured.",
                    "not_found" if in_path else "invalid_choice",
                )
            ],
        )

    return answer


def _profile_invalid(exc: ProfileInvalid) -> ApiError:
    return ApiError(
        422,
        [error_entry(["body", name], msg, "value_error") for name, msg in exc.errors.items()],
    )


def _unknown_format(exc: UnknownFormat) -> ApiError:
    return ApiError(
        422,
        [
            error_entry(
                ["query", "format"],
                f"Unknown format; use one of: {', '.join(exc.supported)}.",
                "invalid_choice",
                supported=list(exc.supported),
            )
        ],
    )


def _not_sendable(exc: InvoiceNotSendable) -> ApiError:
    return ApiError(
        422,
        [
            error_entry(
                ["path", "invoice_id"],
                " ".join(filter(None, [_NOT_SENDABLE[exc.reason], exc.detail])),
                f"not_sendable.{exc.reason}",
            )
        ],
    )


#: The surface's map (``Api(errors=...)``); operations add where a provider's failure lies.
ERRORS: ErrorMap = {
    ProfileInvalid: _profile_invalid,
    UnknownFormat: _unknown_format,
    DocumentNotAvailable: lambda exc: ApiError(
        422, [error_entry(["query", "format"], exc.reason, "not_available")]
    ),
    InvoiceNotSendable: _not_sendable,
    PaymentMethodRefused: lambda exc: ApiError(
        422, [error_entry(["path", "method_id"], str(exc), "invalid_state")]
    ),
    UnsupportedMethodType: lambda exc: ApiError(
        422, [error_entry(["body", "method_type"], str(exc), "invalid_choice")]
    ),
    UnknownProvider: unknown_provider("path", "slug"),
}
