"""Tasks describe *what* is searched and never import *how* (docs/architecture.md section 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = (
    "gp_loss.run.runner",
    "gp_loss.api",
    "gp_loss.engine.evolution",
    "gp_loss.fitness",
    "gp_loss.toolbox",
    "gp_loss.execution",
)


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_file_under_tasks_imports_the_search_engine():
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / "tasks").rglob("*.py")
        for module in _imported_modules(path)
        if module.startswith(ENGINE) or module in ("gp_loss.make_toolbox", "gp_loss.load_loss")
    }
    assert not offenders


def test_import_tasks_loads_no_engine_module():
    code = (
        "import sys, tasks; "
        f"print(sorted(m for m in sys.modules if m.startswith({ENGINE!r}) or m in ('deap', 'gp_loss.trees.codegen')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
