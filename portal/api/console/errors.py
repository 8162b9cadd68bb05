"""The provider console's answers to the exceptions its services raise (its error map)."""

from __future__ import annotations

from portal.api.console.jsonpatch import PatchError
from portal.api.console.query import QueryError
from portal.api.console.serializers import SETTINGS_COLUMNS
from portal.api.core import ApiError, ErrorAnswer, ErrorMap, error_entry
from portal.catalog.settings import SettingsInvalid
from portal.ops.audit import AdminActionRefused


def query_error(exc: QueryError) -> ApiError:
    """A filter, sort or select the collection cannot apply: 400 at that parameter."""
    return ApiError(
        400,
        [
            error_entry(["query", exc.param, *loc], message, type_)
            for loc, message, type_ in exc.entries
        ],
    )


def patch_error(exc: PatchError) -> ApiError:
    """A JSON Patch that cannot be applied: a failed ``test`` is 409, anything else 400."""
    status = 409 if exc.code == "test_failed" else 400
    return ApiError(status, [error_entry(["body", exc.index], exc.message, exc.code)])


def settings_invalid(exc: SettingsInvalid) -> ApiError:
    """Settings the services refuse: 400, one error per setting, named as in the resource."""
    camel = {column: name for name, (column, _) in SETTINGS_COLUMNS.items()}
    return ApiError(
        400,
        [
            error_entry(["body", f"/{camel.get(field, field)}"], message, "invalid_value")
            for field, message in exc.errors.items()
        ],
    )


def refused(status: int, *loc: str) -> ErrorAnswer:
    """An admin action the services refuse, answered ``status`` at ``loc``."""

    def answer(exc: AdminActionRefused) -> ApiError:
        return ApiError(
            status,
            [
                error_entry(
                    list(loc), getattr(exc, "message", str(exc)), getattr(exc, "code", "refused")
                )
            ],
        )

    return answer


#: The surface's map (``Api(errors=...)``): an action the invoice's state does not allow
#: (e.g. deleting a finalized invoice) is a 409 at the invoice; operations whose refusal is
#: about their input say so with ``raises=``.
ERRORS: ErrorMap = {
    QueryError: query_error,
    PatchError: patch_error,
    SettingsInvalid: settings_invalid,
    AdminActionRefused: refused(409, "path", "invoiceUid"),
}
