"""Found losses as ``torch.nn.Module``: :func:`load_loss` and the helpers behind export."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from gp_loss.adapters import get_adapter, valid_mean
from gp_loss.trees.best_json import BestLoss, SlotLoss, read_best
from gp_loss.trees.standalone import module_source


def describe(best: BestLoss) -> str:
    """One-paragraph header for generated files."""
    fitness = "n/a" if best.fitness is None else f"{best.fitness:.6g}"
    return f"Loss found by gp-loss. task: {best.task!r}; metric: {best.metric!r}; fitness: {fitness}."


def source_module(slots: Mapping[str, SlotLoss], header: str = "") -> ModuleType:
    """Execute the standalone source in a fresh in-memory module."""
    module = ModuleType("gp_loss_found_loss")
    code = compile(module_source(slots, header), "<gp-loss found loss>", "exec")
    exec(code, module.__dict__)
    return module


def file_module(slots: Mapping[str, SlotLoss], header: str = "") -> ModuleType:
    """Write the standalone source to a temporary file and import it (TorchScript needs a file)."""
    handle, path = tempfile.mkstemp(prefix="gp_loss_found_", suffix=".py")
    with os.fdopen(handle, "w", encoding="utf-8") as fh:
        fh.write(module_source(slots, header))
    name = Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # TorchScript resolves globals through the module
    spec.loader.exec_module(module)
    return module


def load_loss(source: str | os.PathLike | BestLoss, pick: int | None = None) -> torch.nn.Module:
    """Load a found loss from a ``best.json`` (or a run directory holding one).

    Returns a ``torch.nn.Module`` for a one-slot file, called as ``loss(logits, labels)`` or
    ``loss(pred_boxes, target_boxes)`` depending on the slot's adapter, and a
    ``torch.nn.ModuleDict`` keyed by slot name for several slots. ``pick``: member ``pick`` of a
    Pareto search's first front (default: the file's default pick). Nothing is unpickled or
    evaluated: trees are parsed against the primitive set.
    """
    from gp_loss.trees.best_json import pick as pick_member

    best = pick_member(source, pick) if isinstance(source, BestLoss) else read_best(source, pick)
    module = source_module(best.slots, describe(best))
    if len(best.slots) == 1:
        return module.Loss()
    return module.build_losses()


class TreeLoss(torch.nn.Module):
    """The search's in-process loss for one slot: adapter -> compiled tree -> mean over valid.

    Computes exactly what the exported ``<Slot>Loss`` class computes (tested), without writing
    a module per candidate.
    """

    def __init__(self, tree: str, signature, options: Mapping[str, Any] | None = None) -> None:
        """Args: ``tree`` (a tree string), ``signature`` (its slot's :class:`SlotSignature`),
        ``options`` (the adapter's options, e.g. ``{"ignore_index": 0}``; default: its defaults)."""
        super().__init__()
        from gp_loss.trees.codegen import compile_tree  # local: keeps import order one-way

        self.tree = tree
        self.adapter = get_adapter(signature.adapter, options)
        self._fn = compile_tree(tree, signature)

    @classmethod
    def for_slot(cls, slot, tree: str, constant_one: bool = False) -> TreeLoss:
        """The loss of ``tree`` in a task's ``slot`` (its signature and adapter options)."""
        return cls(tree, slot.signature(constant_one), slot.adapter_options)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        inputs, valid = self.adapter.forward(prediction, target)
        return valid_mean(self._fn(*inputs), valid, inputs[0])

    def extra_repr(self) -> str:
        return f"tree={self.tree!r}, adapter={self.adapter!r}"
