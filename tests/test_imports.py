"""The package's imports run one way: no module imports, even from inside a function, a module
that imports it back.

A circle holds only as long as one side imports late (inside a function, after the module's
code), so it breaks as soon as someone tidies that import to the top. The graph is read from the
source with ``ast``: every ``import`` and ``from ... import`` anywhere in a module, relative ones
resolved against the module's package, each pointing at the module it loads (``from .x import
name`` at ``x``; ``from . import x`` at ``x`` when ``x`` is a module). Imports under ``if
TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ringspot"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))}


def type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Import nodes inside ``if TYPE_CHECKING:`` blocks."""
    skipped: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(child for body in node.body for child in ast.walk(body))
    return skipped


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its code."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    nearest = (nearest_module(target, modules) for target in found if target.split(".")[0] == PACKAGE)
    return {module for module in nearest if module is not None}


def nearest_module(target: str, modules: dict[str, Path]) -> str | None:
    """``target`` itself, or the closest package module above it (``ringspot.core.x.y`` -> ``ringspot.core.x``)."""
    parts = target.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the package's modules it imports."""
    modules = package_modules()
    return {name: imported_modules(name, path, modules) - {name} for name, path in modules.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in graph[stack.pop()] - seen:
            seen.add(target)
            stack.append(target)
    return seen


def test_the_graph_resolves_relative_and_function_level_imports():
    graph = import_graph()
    # Top-level, relative: ``from ..core.db import Database`` in the runtime.
    assert "ringspot.core.db" in graph["ringspot.workers.runtime"]
    # ``from ..workers import queues`` names a module, so the edge goes to it, not to the package.
    assert "ringspot.workers.queues" in graph["ringspot.tasks.indexes"]
    # The worker entry point registers the actors: ``from ..tasks import analyses, ...``.
    assert "ringspot.tasks.analyses" in graph["ringspot.workers.app"]
    assert len(graph) > 100 and sum(map(len, graph.values())) > 300


def test_the_check_finds_a_circle_held_open_by_a_function_level_import(tmp_path):
    folder = tmp_path / PACKAGE
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "a.py").write_text("from .b import helper\n")
    (folder / "b.py").write_text("def helper():\n    from . import a\n    return a\n")
    modules = {module_name_under(tmp_path, path): path for path in sorted(folder.rglob("*.py"))}
    imports = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert imports["ringspot.a"] == {"ringspot.b"} and imports["ringspot.b"] == {"ringspot.a"}
    assert set(circle(imports) or []) == {"ringspot.a", "ringspot.b"}


def module_name_under(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its first module repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def test_no_import_circles():
    found = circle(import_graph())
    assert found is None, "import circle: " + " -> ".join(found or [])


def test_the_worker_runtime_imports_nothing_of_tasks():
    graph = import_graph()
    runtime = [name for name in graph if name.startswith("ringspot.workers.") and name != "ringspot.workers.app"]
    reached = {target for name in runtime for target in reachable(graph, name)}
    assert not {name for name in reached if name.startswith("ringspot.tasks")}
