"""No import circles among the project's modules, counting the imports inside functions too
(a lazy import that closes a circle still ties two modules into one)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gp_loss", "tasks", "primitives")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from a.b import c`` counts ``a.b.c`` where
    that is a module, else ``a.b``)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                found = resolve(target)
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_the_finder_sees_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert _circles(_graph(_modules())) == []


#: The engine's layers, lowest first (docs/architecture.md section 1): a module imports only from
#: its own layer and the layers before it. The longest matching prefix places a module (the
#: package ``gp_loss`` itself only places its ``__init__``).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("operators", ("primitives",)),
    ("core", ("gp_loss", "gp_loss.core", "gp_loss.version", "gp_loss.adapters")),
    ("problems", ("tasks",)),
    ("trees", ("gp_loss.trees",)),
    ("fitness", ("gp_loss.fitness",)),
    ("search", ("gp_loss.engine", "gp_loss.execution")),
    ("runs", ("gp_loss.run",)),
    ("assembly", ("gp_loss.run.runner",)),
    ("results", ("gp_loss.results", "gp_loss.export")),
    ("tracking", ("gp_loss.tracking",)),
    ("surfaces", ("gp_loss.api", "gp_loss.toolbox", "gp_loss.commands", "gp_loss.bench", "gp_loss.testing")),
)


def _layer(module: str) -> int | None:
    found = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or (module.startswith(prefix + ".") and prefix != "gp_loss")
    ]
    return max(found)[1] if found else None


def test_every_module_has_a_layer_and_imports_only_downwards():
    graph = _graph(_modules())
    assert [m for m in sorted(graph) if _layer(m) is None] == []
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_every_package_folder_is_a_regular_package_that_setup_installs():
    """A folder of modules without ``__init__.py`` imports from a checkout (a namespace package)
    but is left out by setup.py's ``find_packages``, so an installed gp-loss would lack it."""
    from setuptools import find_packages

    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for top in ("gp_loss", "primitives", "tasks")
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    installed = set(
        find_packages(
            str(ROOT), include=["gp_loss", "gp_loss.*", "primitives", "primitives.*", "tasks", "tasks.*"]
        )
    )
    assert sorted(folders - installed) == []
