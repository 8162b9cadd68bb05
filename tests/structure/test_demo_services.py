"""The demo seed builds nothing itself: portal/demo.py names no ORM model class.

The product rule: everything the demo shows can be made from the admin console and the
admin API, so ``seed-demo`` calls the same services. Read from the code: every name that
demo.py imports (at run time or for type checking) is resolved and must not be a mapped
class or a models module; enums, services and query helpers are fine. Nor does it add rows
to the session itself.
"""

from __future__ import annotations

import ast
import enum
import importlib
import types
from pathlib import Path

from portal.db import Base

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "portal" / "demo.py"
#: Session calls that write rows directly.
SESSION_WRITES = {"add", "add_all", "delete", "merge", "bulk_save_objects", "execute"}


def _imported(source: str) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every import; name None for ``import module``."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return found


def model_imports(source: str) -> list[str]:
    """The imports of ``source`` that bring in a mapped class or a models module."""
    bad = []
    for line, module, name in _imported(source):
        if not module.startswith("portal"):
            continue
        target = importlib.import_module(module)
        value = target if name is None else getattr(target, name, None)
        if value is None:  # a submodule not imported yet
            value = importlib.import_module(f"{module}.{name}")
        if isinstance(value, types.ModuleType) and value.__name__.endswith(".models"):
            bad.append(f"line {line}: {module}{'.' + name if name else ''} (a models module)")
        elif isinstance(value, type) and issubclass(value, Base):
            bad.append(f"line {line}: {module}.{name} (a mapped class)")
    return bad


def session_writes(source: str) -> list[str]:
    """Calls such as ``session.add(...)`` that write rows without a service."""
    return [
        f"line {node.lineno}: session.{node.func.attr}()"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SESSION_WRITES
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "session"
    ]


def test_demo_imports_no_model_class():
    assert model_imports(DEMO.read_text()) == []


def test_demo_writes_no_rows_itself():
    assert session_writes(DEMO.read_text()) == []


def test_demo_imports_enums_and_services():
    """What it does import from the packages is services, queries and enums."""
    names = [(module, name) for _, module, name in _imported(DEMO.read_text())]
    from_models = [
        getattr(importlib.import_module(module), name)
        for module, name in names
        if module.endswith(".models") and name is not None
    ]
    assert all(isinstance(value, type) and issubclass(value, enum.Enum) for value in from_models)
    assert ("portal.tenancy.sellers", "create_seller") in names
    assert ("portal.usage.services", "ingest_usage") in names


def test_the_checks_find_what_they_look_for():
    """The checks themselves: each way of building rows directly is found."""
    assert model_imports("from portal.tenancy.models import Seller, Tenant\n") == [
        "line 1: portal.tenancy.models.Seller (a mapped class)",
        "line 1: portal.tenancy.models.Tenant (a mapped class)",
    ]
    assert model_imports("import portal.usage.models\n") == [
        "line 1: portal.usage.models (a models module)"
    ]
    assert model_imports("from portal.usage import models\n") == [
        "line 1: portal.usage.models (a models module)"
    ]
    guarded = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from portal.catalog.models import Price\n"
    )
    assert model_imports(guarded) == ["line 3: portal.catalog.models.Price (a mapped class)"]
    allowed = "from portal.catalog.models import PriceModel\nfrom portal.db import lock\n"
    assert model_imports(allowed) == []
    assert session_writes("def f(session):\n    session.add(x)\n") == ["line 2: session.add()"]
    assert session_writes("def f(session):\n    create_seller(session, {}, a)\n") == []
