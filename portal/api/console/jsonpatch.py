"""RFC 6902 JSON Patch over a JSON document, all-or-nothing.

The patch is applied to a deep copy; the first failing operation (a failed ``test``, a path
that does not exist, an invalid pointer) raises :class:`PatchError` and the original is
untouched, so the caller writes nothing.
"""

from __future__ import annotations

import copy
from typing import Any

from portal.api.console.query import pointer_parts

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
