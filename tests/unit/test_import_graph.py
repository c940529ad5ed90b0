"""The architecture, checked from the source (imports read with `ast`, nothing imported).

- `app/` never imports `workers/` or `tasks/`, by an import statement or by name (importlib).
- No import circle between packages (`app.<package>`, `app.<root module>`, `workers`, `tasks`).
- Flask and Celery are imported only by `app/api/`, `workers/` and `tasks/`.
- Project modules are imported at the top of a file, never inside a function: a deferred
  import hides an arrow of the graph. (Heavy libraries may be deferred, with a comment.)
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOPS = ("app", "workers", "tasks")
PROJECT = TOPS
WEB_OR_QUEUE = ("flask", "celery", "kombu")
IMPORT_BY_NAME = {"import_module", "__import__", "import_string", "find_spec"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module (or name), dotted
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files() -> Iterator[Path]:
    for top in TOPS:
        yield from sorted((REPO / top).rglob("*.py"))


def _imports(path: Path) -> Iterator[Import]:
    source = _module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(source, alias.name, child.lineno, in_function)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                for alias in child.names:
                    yield Import(source, f"{base}.{alias.name}", child.lineno, in_function)
            elif (
                isinstance(child, ast.Call)
                and (getattr(child.func, "attr", None) or getattr(child.func, "id", None)) in IMPORT_BY_NAME
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and isinstance(child.args[0].value, str)
            ):
                yield Import(source, child.args[0].value.split(":")[0], child.lineno, True)
            yield from visit(child, inside)

    yield from visit(tree, False)


def _all_imports() -> list[Import]:
    return [imp for path in _files() for imp in _imports(path)]


def _node(module: str) -> str | None:
    """The package a project module belongs to: `app.<package>` or `app.<root module>`, `workers`, `tasks`."""
    parts = module.split(".")
    if parts[0] not in PROJECT:
        return None
    if parts[0] != "app":
        return parts[0]
    return ".".join(parts[:2]) if len(parts) > 1 else "app"


def _existing(module: str) -> str:
    """`module`, or its longest prefix that is a module of ours (for `from x import name`)."""
    while module:
        path = REPO / module.replace(".", "/")
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return module
        module = module.rpartition(".")[0]
    return module


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def test_app_never_imports_workers_or_tasks() -> None:
    bad = [
        f"{i.source}:{i.line} -> {i.target}"
        for i in _all_imports()
        if i.source.startswith("app") and i.target.split(".")[0] in ("workers", "tasks")
    ]
    assert not bad, "app/ must not import the Celery side (it is handed in by the entry points):\n" + "\n".join(bad)


def test_no_import_circle_between_packages() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], str] = {}
    for imp in _all_imports():
        a, b = _node(imp.source), _node(_existing(imp.target))
        if a and b and a != b and b != "app":
            edges[a].add(b)
            why.setdefault((a, b), f"{imp.source}:{imp.line} -> {imp.target}")
    cycles = _cycles(edges)
    report = []
    for component in cycles:
        members = set(component)
        arrows = [why[(a, b)] for a in component for b in sorted(edges[a] & members)]
        report.append(" <-> ".join(component) + "\n    " + "\n    ".join(arrows))
    assert not cycles, "import circles between packages:\n" + "\n".join(report)


def test_no_import_circle_between_modules() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in _all_imports():
        target = _existing(imp.target)
        if _node(imp.source) and _node(target) and target != imp.source:
            edges[imp.source].add(target)
    cycles = _cycles(edges)
    assert not cycles, "import circles between modules:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_flask_and_celery_only_at_the_edges() -> None:
    allowed = ("app.api", "workers", "tasks")
    bad = [
        f"{i.source}:{i.line} -> {i.target}"
        for i in _all_imports()
        if i.target.split(".")[0] in WEB_OR_QUEUE
        and not any(i.source == a or i.source.startswith(a + ".") for a in allowed)
    ]
    assert not bad, "Flask/Celery imported outside app/api/, workers/, tasks/:\n" + "\n".join(bad)


def test_project_imports_are_at_the_top_of_files() -> None:
    bad = sorted(
        {
            f"{i.source}:{i.line} -> {_existing(i.target)}"
            for i in _all_imports()
            if i.in_function and _node(_existing(i.target))
        }
    )
    assert not bad, f"{len(bad)} imports of project modules inside functions (hidden arrows):\n" + "\n".join(bad)


def test_the_checks_see_what_they_check(tmp_path: Path) -> None:
    """The cycle finder and the import reader find planted faults (so the checks above can fail)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    planted = REPO / "app" / "_planted_for_test.py"
    planted.write_text(
        "import importlib\n\n\ndef f():\n"
        "    from app.core import clock\n"
        "    importlib.import_module('workers.canvas')\n"
    )
    try:
        found = list(_imports(planted))
    finally:
        planted.unlink()
    assert Import("app._planted_for_test", "app.core.clock", 5, True) in found
    assert Import("app._planted_for_test", "workers.canvas", 6, True) in found


def test_only_the_wsgi_entry_imports_the_api() -> None:
    """The API is an edge: read models it shares with the CLI live in `app/operations/`."""
    bad = [
        f"{i.source}:{i.line} -> {i.target}"
        for i in _all_imports()
        if i.target.startswith("app.api") and not i.source.startswith("app.api") and i.source != "workers.wsgi"
    ]
    assert not bad, "modules outside app/api/ import the API:\n" + "\n".join(bad)


def test_app_resolves_nothing_by_name() -> None:
    """No string lookups: every arrow of `app/` is an import statement a reader can follow."""
    bad = []
    for path in (REPO / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) in {
                "import_module",
                "__import__",
                "import_string",
            }:
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not bad, "modules resolved by name in app/:\n" + "\n".join(bad)


# The main run's simulated trading engine stands for an external engine: it reaches the system
# only through the client library (issue 16). Type-only imports may name the run's config and feed.
ENGINE_SIDE = ("app.simulation.engine", "app.simulation.trading")
ENGINE_TYPE_ONLY = ("app.simulation.config", "app.simulation.market")


def _engine_side_imports(text: str) -> list[tuple[str, bool, int]]:
    """(imported module, under `if TYPE_CHECKING:`, line) of every import statement in `text`."""
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            typed = type_only or (
                isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING"
            )
            if isinstance(child, ast.Import):
                found.extend((alias.name, type_only, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.extend((f"{child.module}.{alias.name}", type_only, child.lineno) for alias in child.names)
            visit(child, typed)

    visit(ast.parse(text), False)
    return found


def _engine_side_violations(module: str, text: str) -> list[str]:
    bad = []
    for target, type_only, line in _engine_side_imports(text):
        if _node(target) is None:
            continue  # the standard library, third parties and the client library
        allowed = ENGINE_SIDE + (ENGINE_TYPE_ONLY if type_only else ())
        if not any(target == a or target.startswith(a + ".") for a in allowed):
            bad.append(f"{module}:{line} -> {target}{' (type only)' if type_only else ''}")
    return bad


def test_the_simulated_engine_reaches_the_system_only_through_the_client() -> None:
    bad = []
    for module in ENGINE_SIDE:
        path = REPO / (module.replace(".", "/") + ".py")
        text = path.read_text()
        bad += _engine_side_violations(module, text)
        if module == "app.simulation.engine":
            assert any(t.startswith("quantum_trader_client.") for t, _, _ in _engine_side_imports(text))
    assert not bad, "the simulated engine imports the system instead of calling its API:\n" + "\n".join(bad)
    planted = "from typing import TYPE_CHECKING\nfrom app.prediction import PredictionService\n"
    planted += "if TYPE_CHECKING:\n    from app.core.container import Container\n"
    planted += "    from app.simulation.market import X\n"
    assert _engine_side_violations("planted", planted) == [
        "planted:2 -> app.prediction.PredictionService",
        "planted:4 -> app.core.container.Container (type only)",
    ]
