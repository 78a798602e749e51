"""Where modules went when gp_loss was cut into sub-packages by layer (2026-12-07): an
``import gp_loss.exchange`` in an older research script still works, with a
``DeprecationWarning`` naming the new home (docs/architecture.md section 1)."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

#: old module -> its home now
MOVED: dict[str, str] = {
    "gp_loss.errors": "gp_loss.core.errors",
    "gp_loss.events": "gp_loss.core.events",
    "gp_loss.settings": "gp_loss.core.settings",
    "gp_loss.option": "gp_loss.core.option",
    "gp_loss.shadowing": "gp_loss.core.shadowing",
    "gp_loss.signature": "gp_loss.core.signature",
    "gp_loss.baselines": "gp_loss.core.baselines",
    "gp_loss.file_lock": "gp_loss.core.file_lock",
    "gp_loss.space": "gp_loss.trees.space",
    "gp_loss.parse": "gp_loss.trees.parse",
    "gp_loss.variation": "gp_loss.trees.variation",
    "gp_loss.codegen": "gp_loss.trees.codegen",
    "gp_loss.intervals": "gp_loss.trees.intervals",
    "gp_loss.symbolic": "gp_loss.trees.symbolic",
    "gp_loss.exchange": "gp_loss.trees.best_json",
    "gp_loss.standalone": "gp_loss.trees.standalone",
    "gp_loss.module": "gp_loss.trees.loss_module",
    "gp_loss.evolution": "gp_loss.engine.evolution",
    "gp_loss.selection": "gp_loss.engine.selection",
    "gp_loss.pareto": "gp_loss.engine.pareto",
    "gp_loss.memory": "gp_loss.engine.search_cache",
    "gp_loss.screened": "gp_loss.engine.screened",
    "gp_loss.progress": "gp_loss.engine.progress",
    "gp_loss.imports": "gp_loss.engine.imports",
    "gp_loss.rundir": "gp_loss.run.run_directory",
    "gp_loss.runlock": "gp_loss.run.runlock",
    "gp_loss.jsonl": "gp_loss.run.jsonl",
    "gp_loss.runlog": "gp_loss.run.runlog",
    "gp_loss.runner": "gp_loss.run.runner",
    "gp_loss.report": "gp_loss.results.report",
    "gp_loss.report_html": "gp_loss.results.report_html",
    "gp_loss.summary": "gp_loss.results.summary",
    "gp_loss.finalists": "gp_loss.results.finalists",
    "gp_loss.retraining": "gp_loss.results.retraining",
    "gp_loss.train": "gp_loss.results.final_training",
    "gp_loss.stats": "gp_loss.results.stats",
    "gp_loss.export": "gp_loss.export.formats",
    "gp_loss.torchscript": "gp_loss.export.torchscript",
    "gp_loss.bundle": "gp_loss.export.bundle",
    "gp_loss.bundle_check": "gp_loss.export.bundle_check",
    "gp_loss.verification": "gp_loss.export.verification",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module name and hands out the moved module itself (one object under both
    names, so classes and registries stay one)."""

    def find_spec(self, name: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} is now {MOVED[spec.name]}", DeprecationWarning, stacklevel=3)
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was imported under its new name."""


def install() -> None:
    """Let the old names import (once per process)."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
