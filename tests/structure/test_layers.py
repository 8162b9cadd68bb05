"""The import graph of portal/, read from the code: layers point downward, no cycles.

Layers, lowest first: the pure domain; the foundation (settings, database helpers,
extensions, the queue); models (tables, their states and errors); services and queries of
each subject package; and the interfaces on top (web, API, CLI, worker, demo data, the app
factory and its wiring). A module may import its own layer and those below, never above;
no two modules import each other, directly or around a loop; and an import inside a
function says why in a comment (on its line or the line above).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "portal"

DOMAIN, FOUNDATION, MODELS, SERVICES, INTERFACES = range(5)
LAYER_NAMES = ["domain", "foundation", "models", "services/queries", "web/api"]

FOUNDATION_MODULES = {
    "portal.config",
    "portal.db",
    "portal.memo",
    "portal.bulk",
    "portal.urls",
    "portal.extensions",
    "portal.ops.queue",
    "portal.ops.after_commit",
}
INTERFACE_PACKAGES = (
    "portal.web",
    "portal.api",
    "portal.devtools",
)
INTERFACE_MODULES = {"portal", "portal.cli", "portal.worker", "portal.demo", "portal.wiring"}
#: Modules that only describe rows: tables, their enums, roles and errors.
MODEL_SUFFIXES = (".models", ".states", ".errors", ".roles")
#: The ORM guard on issued documents, installed with the tables it guards.
MODEL_MODULES = {"portal.models", "portal.invoices.freeze"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    if module == "portal.domain" or module.startswith("portal.domain."):
        return DOMAIN
    if module in FOUNDATION_MODULES:
        return FOUNDATION
    if module in INTERFACE_MODULES or module.startswith(INTERFACE_PACKAGES):
        return INTERFACES
    if module in MODEL_MODULES or module.endswith(MODEL_SUFFIXES):
        return MODELS
    return SERVICES


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool
    explained: bool


def _modules() -> dict[str, Path]:
    return {module_name(path): path for path in PORTAL.rglob("*.py")}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _explained(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or on the line above its block of imports."""
    if "#" in lines[lineno - 1]:
        return True
    above = lineno - 2
    while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
        if "#" in lines[above]:
            return True
        above -= 1
    return above >= 0 and lines[above].strip().startswith("#")


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
    return [f"{base}.{alias.name}" for alias in node.names]


def _imports() -> list[Import]:
    modules = _modules()
    found: list[Import] = []
    for source, path in modules.items():
        text = path.read_text()
        lines = text.splitlines()
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        tree = ast.parse(text)
        in_functions = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _targets(node, package):
                target = _resolve(name, modules) if name.startswith("portal") else None
                if target and target != source:
                    found.append(
                        Import(
                            source,
                            target,
                            node.lineno,
                            id(node) in in_functions,
                            _explained(lines, node.lineno),
                        )
                    )
    return found


def test_the_layer_names_cover_every_module():
    layers = {layer(module) for module in _modules()}
    assert layers == set(range(len(LAYER_NAMES)))


def test_imports_point_downward():
    upward = [
        f"{imp.source}:{imp.line} ({LAYER_NAMES[layer(imp.source)]}) imports {imp.target} "
        f"({LAYER_NAMES[layer(imp.target)]})"
        for imp in _imports()
        if layer(imp.target) > layer(imp.source)
    ]
    assert upward == []


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for imp in _imports():
        graph.setdefault(imp.source, set()).add(imp.target)
    cycles = _cycles(graph)
    assert cycles == []


def test_imports_inside_functions_say_why():
    silent = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in _imports()
        if imp.in_function and not imp.explained
    ]
    assert silent == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checks_find_what_they_look_for():
    """The checks themselves: a loop and an upward edge are found, a clean graph passes."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert layer("portal.web.invoices.views") > layer("portal.invoices.queries")
    assert layer("portal.invoices.queries") > layer("portal.invoices.models")
    assert layer("portal.invoices.models") > layer("portal.db") > layer("portal.domain.money")
