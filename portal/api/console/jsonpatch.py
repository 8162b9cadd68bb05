"""RFC 6902 JSON Patch over a JSON document, all-or-nothing.

The patch is applied to a deep copy; the first failing operation (a failed ``test``, a path
that does not exist, an invalid pointer) raises :class:`PatchError` and the original is
untouched, so the caller writes nothing.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from portal.api.console.query import pointer_parts
from portal.api.console.schemas import NULLABLE_SETTINGS, SettingsPatch, patch_problems
from portal.api.console.serializers import READ_ONLY, SETTINGS_COLUMNS
from portal.api.core import ApiError, error_entry, unstorable_text

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
MAX_OPERATIONS = 100


class PatchError(ValueError):
    """Why the patch cannot be applied: ``index`` of the operation and a message."""

    def __init__(self, index: int, message: str, *, code: str = "invalid_patch"):
        super().__init__(f"operation {index}: {message}")
        self.index = index
        self.message = message
        self.code = code


def apply_patch(document: Any, patch: Any) -> Any:
    """The patched copy of ``document``."""
    if not isinstance(patch, list):
        raise PatchError(0, "the body must be a JSON array of patch operations")
    if len(patch) > MAX_OPERATIONS:
        raise PatchError(0, f"at most {MAX_OPERATIONS} operations")
    result = copy.deepcopy(document)
    for index, operation in enumerate(patch):
        result = _apply(result, operation, index)
    return result


def _apply(doc: Any, operation: Any, index: int) -> Any:
    if not isinstance(operation, dict):
        raise PatchError(index, "each operation must be an object")
    op = operation.get("op")
    if op not in OPERATIONS:
        raise PatchError(index, f"op must be one of {', '.join(OPERATIONS)}")
    path = _pointer(operation, "path", index)
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(index, f"'{op}' needs a value")
    if op == "add":
        return _add(doc, path, copy.deepcopy(operation["value"]), index)
    if op == "remove":
        return _remove(doc, path, index)[0]
    if op == "replace":
        doc = _remove(doc, path, index)[0]
        return _add(doc, path, copy.deepcopy(operation["value"]), index)
    if op == "test":
        actual = _get(doc, path, index)
        if not _equal(actual, operation["value"]):
            raise PatchError(
                index, f"test failed: /{'/'.join(path)} is {actual!r}", code="test_failed"
            )
        return doc
    source = _pointer(operation, "from", index)
    if op == "move":
        if path[: len(source)] == source and path != source:
            raise PatchError(index, "cannot move a value into one of its own children")
        doc, value = _remove(doc, source, index)
        return _add(doc, path, value, index)
    return _add(doc, path, copy.deepcopy(_get(doc, source, index)), index)  # copy


def _pointer(operation: dict, key: str, index: int) -> list[str]:
    raw = operation.get(key)
    if not isinstance(raw, str):
        raise PatchError(index, f"'{key}' must be a JSON pointer string")
    try:
        return pointer_parts(raw)
    except ValueError as exc:
        raise PatchError(index, str(exc)) from None


def _parent(doc: Any, path: list[str], index: int) -> Any:
    target = doc
    for part in path[:-1]:
        target = _child(target, part, index, path)
    return target


def _child(target: Any, part: str, index: int, path: list[str]) -> Any:
    if isinstance(target, dict) and part in target:
        return target[part]
    if isinstance(target, list) and part.isdigit() and int(part) < len(target):
        return target[int(part)]
    raise PatchError(index, f"path /{'/'.join(path)} does not exist", code="path_not_found")


def _get(doc: Any, path: list[str], index: int) -> Any:
    target = doc
    for part in path:
        target = _child(target, part, index, path)
    return target


def _add(doc: Any, path: list[str], value: Any, index: int) -> Any:
    if not path:
        return value  # replaces the whole document
    parent = _parent(doc, path, index)
    key = path[-1]
    if isinstance(parent, dict):
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-":
            parent.append(value)
        elif key.isdigit() and int(key) <= len(parent):
            parent.insert(int(key), value)
        else:
            raise PatchError(index, f"index {key} is out of range", code="path_not_found")
    else:
        raise PatchError(index, f"path /{'/'.join(path)} does not exist", code="path_not_found")
    return doc


def _remove(doc: Any, path: list[str], index: int) -> tuple[Any, Any]:
    if not path:
        raise PatchError(index, "cannot remove the whole document")
    parent = _parent(doc, path, index)
    key = path[-1]
    if isinstance(parent, dict) and key in parent:
        return doc, parent.pop(key)
    if isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        return doc, parent.pop(int(key))
    raise PatchError(index, f"path /{'/'.join(path)} does not exist", code="path_not_found")


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1 and types otherwise strict."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# --- the company settings document -----------------------------------------------------------
# A PATCH of the console's settings resource: the patch as SettingsPatch allows it, where a
# problem inside it is located, and the patched document as the services' settings.


def checked_patch(patch: Any) -> list[dict]:
    """The patch as SettingsPatch reads it (400 at the operation when it does not allow it;
    ``7.0`` is the integer 7), with each ``remove`` of a setting that may be empty as the
    ``replace`` with null it means."""
    try:
        checked = SettingsPatch.model_validate(patch, strict=True).model_dump(by_alias=True)
    except ValidationError as exc:
        raise ApiError(
            400,
            [error_entry(["body", *loc], msg, type_) for loc, msg, type_ in patch_problems(exc)],
        ) from None
    return [
        {"op": "replace", "path": item["path"], "value": None}
        if item["op"] == "remove" and item["path"][1:] in NULLABLE_SETTINGS
        else item
        for item in checked
    ]


def patch_location(patch: Any, loc: list) -> list:
    """A problem in an operation's ``value`` located at the setting it changes (``/notes``),
    as the settings' own errors are; anything else at its place in the patch."""
    if len(loc) >= 2 and loc[1] == "value" and isinstance(patch, list):
        operation = patch[loc[0]] if isinstance(loc[0], int) else None
        if isinstance(operation, dict) and isinstance(operation.get("path"), str):
            if unstorable_text(operation["path"]) is None:
                return [operation["path"], *loc[2:]]
    return loc


def settings_values(patched: Any, current: dict) -> dict:
    """The patched document as the services' complete settings dict."""
    if not isinstance(patched, dict):
        raise ApiError(
            400, [error_entry(["body"], "The settings must stay an object.", "invalid_patch")]
        )
    for name in READ_ONLY:
        if patched.get(name) != current[name]:
            raise ApiError(
                400, [error_entry(["body", f"/{name}"], f"/{name} is read-only.", "read_only")]
            )
    unknown = set(patched) - set(SETTINGS_COLUMNS) - set(READ_ONLY)
    if unknown:
        raise ApiError(
            400,
            [
                error_entry(["body", f"/{name}"], f"Unknown setting /{name}.", "unknown_property")
                for name in sorted(unknown)
            ],
        )
    values = {}
    for name, (column, default) in SETTINGS_COLUMNS.items():
        if name not in patched:
            if default is not None:
                raise ApiError(
                    400,
                    [error_entry(["body", f"/{name}"], f"/{name} cannot be removed.", "required")],
                )
            values[column] = None
        else:
            values[column] = patched[name]
    return values
