"""gp-loss: search loss functions from scratch (AutoLoss-Zero) with DEAP and torch.

Public API:
    search, resume, retrain, compare: search a loss for a task (a registered name or your own task
        object), continue a run, retrain a loss over seeds, retrain several side by side; ``search`` returns a SearchResult.
    make_toolbox: a DEAP toolbox (expr, individual, population, mutate, mate, select, evaluate,
        map) so that ``deap.algorithms`` run unchanged with our search space and fitness pipeline.
    load_loss: a found loss (``best.json``) as a ``torch.nn.Module`` / ``ModuleDict``.
    finalize: retrain a run's top losses over seeds beside the baseline; paired verdicts.
    write_bundle, verify: export a found loss as a self-checking folder; check one.
    compile_tree: a tree string as a straight-line torch function.
    parse_tree: a tree string as a DEAP ``PrimitiveTree`` (safe: never evaluated).
    primitive_set: the DEAP ``PrimitiveSet`` of a slot signature.
    SlotSignature: what a slot's trees see.
    GpLossError: user-facing errors.
    Adapter, register_adapter: define a new input adapter (one class, one file).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> module defining it. Loaded on first use, so that ``import gp_loss.adapters``
#: (what tasks import) does not load the search engine (PEP 562).
_PUBLIC = {
    "Adapter": "gp_loss.adapters",
    "BestLoss": "gp_loss.trees.best_json",
    "GpLossError": "gp_loss.core.errors",
    "LossGenome": "gp_loss.trees.space",
    "LossTree": "gp_loss.trees.space",
    "SlotLoss": "gp_loss.trees.best_json",
    "SlotSignature": "gp_loss.core.signature",
    "compile_tree": "gp_loss.trees.codegen",
    "finalize": "gp_loss.results.finalists",
    "verify": "gp_loss.export.verification",
    "write_bundle": "gp_loss.export.bundle",
    "load_loss": "gp_loss.trees.loss_module",
    "make_toolbox": "gp_loss.toolbox",
    "parse_tree": "gp_loss.trees.parse",
    "primitive_set": "gp_loss.trees.space",
    "read_best": "gp_loss.trees.best_json",
    "register_adapter": "gp_loss.adapters",
    "compare": "gp_loss.api",
    "resume": "gp_loss.api",
    "retrain": "gp_loss.api",
    "search": "gp_loss.api",
    "SearchResult": "gp_loss.api",
    "write_best": "gp_loss.trees.best_json",
}


from gp_loss.version import __version__  # noqa: E402,F401  (the one version string)


def _check_shadowing() -> None:
    from gp_loss.core import shadowing

    shadowing.check()


_check_shadowing()

from gp_loss.core import moved  # noqa: E402  (modules from before the sub-packages)

moved.install()


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'gp_loss' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


__all__ = [
    "Adapter",
    "BestLoss",
    "GpLossError",
    "LossGenome",
    "LossTree",
    "SearchResult",
    "SlotLoss",
    "SlotSignature",
    "compile_tree",
    "finalize",
    "load_loss",
    "make_toolbox",
    "parse_tree",
    "primitive_set",
    "read_best",
    "register_adapter",
    "resume",
    "retrain",
    "search",
    "verify",
    "write_best",
    "write_bundle",
]
