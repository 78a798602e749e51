"""Standalone Python source of a found loss: imports only torch, TorchScript-compatible.

The in-process modules of :func:`gp_loss.load_loss` are built from this very source, so the
exported file and the loaded module cannot drift apart.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable, Mapping

from gp_loss.adapters import Adapter, get_adapter, valid_mean
from gp_loss.trees.best_json import SlotLoss
from gp_loss.trees.codegen import function_name, tree_code
from gp_loss.trees.parse import parse_tree
from primitives import PRIMITIVES, aggregation, numerics

_CONSTANTS = ("EPS", "EXP_MAX", "MAX_MAGNITUDE", "SQRT_EPS")


def _source(fn: Callable) -> str:
    """Source of a function without its decorators, numeric constants inlined as literals.

    TorchScript cannot read global floats from plain functions, hence the inlining.
    """
    lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def "))
    text = "\n".join(lines[start:]) + "\n"
    for name in _CONSTANTS:
        text = re.sub(rf"\b{name}\b", repr(getattr(numerics, name)), text)
    return text


#: The class of a one-slot file: the one name to import.
ONE_SLOT_CLASS = "Loss"


def class_name(slot: str, slots: int = 2) -> str:
    """Module class name of a slot: ``Loss`` in a one-slot file, else ``cls`` -> ``ClsLoss``."""
    if slots == 1:
        return ONE_SLOT_CLASS
    return "".join(part.capitalize() for part in slot.split("_")) + "Loss"


def _forward_params(adapter: Adapter) -> str:
    return ", ".join(f"{name}: Tensor" for name in adapter.arguments)


def _slot_class(slot: str, loss: SlotLoss, tree_fn: str, n_inputs: int, name: str) -> str:
    adapter = get_adapter(loss.adapter, loss.options)
    tree_args = ", ".join(f"inputs[{i}]" for i in range(n_inputs))
    options = adapter.options
    init_sig = ", ".join(["self", *(f"{k}: {type(v).__name__} = {v!r}" for k, v in options.items())])
    init_body = "".join(f"        self.{k} = {k}\n" for k in options)
    call_args = ", ".join([*adapter.arguments, *(f"self.{k}" for k in options)])
    return (
        f"class {name}(torch.nn.Module):\n"
        f'    """Searched loss for slot {slot!r}, adapter {loss.adapter!r}: mean of {loss.tree}."""\n\n'
        f"    def __init__({init_sig}) -> None:\n"
        f"        super().__init__()\n{init_body}"
        f"        self.tree = {loss.tree!r}\n\n"
        f"    def forward(self, {_forward_params(adapter)}) -> Tensor:\n"
        f"        inputs, valid = {adapter.function.__name__}({call_args})\n"
        f"        out = {tree_fn}({tree_args})\n"
        f"        return valid_mean(out, valid, inputs[0])\n\n"
        f"    def extra_repr(self) -> str:\n"
        f'        return "tree=" + repr(self.tree)\n'
    )


def _container_class(slots: Mapping[str, SlotLoss]) -> str:
    """``SearchedLosses``: every slot's loss in one module, the shape TorchScript and
    ``torch.export`` save in one file. ``forward`` takes every slot's two arguments in slot order
    and returns the slots' losses in that order; ``m.<slot>(prediction, target)`` is one slot's."""
    init = "".join(f"        self.{slot}_loss = {class_name(slot)}()\n" for slot in slots)
    methods, params, calls = [], [], []
    for slot, loss in slots.items():
        adapter = get_adapter(loss.adapter, loss.options)
        names = [f"{slot}_{argument}" for argument in adapter.arguments]
        params += [f"{name}: Tensor" for name in names]
        calls.append(f"self.{slot}_loss({', '.join(names)})")
        methods.append(
            f"    @torch.jit.export\n"
            f"    def {slot}(self, {_forward_params(adapter)}) -> Tensor:\n"
            f"        return self.{slot}_loss({', '.join(adapter.arguments)})\n"
        )
    forward = (
        f"    def forward(self, {', '.join(params)}) -> Tuple[{', '.join('Tensor' for _ in slots)}]:\n"
        f"        return ({', '.join(calls)},)\n"
    )
    return (
        "class SearchedLosses(torch.nn.Module):\n"
        '    """Every slot\'s loss: ``m(*arguments of each slot, in slot order)`` returns them all,\n'
        '    ``m.<slot>(prediction, target)`` one."""\n\n'
        "    def __init__(self) -> None:\n"
        "        super().__init__()\n" + init + "\n" + forward + "\n" + "\n".join(methods)
    )


def usage(slots: Mapping[str, SlotLoss], module: str = "loss") -> list[str]:
    """Two lines showing how to use the file (its header; the model card quotes them)."""
    if len(slots) == 1:
        ((_, loss),) = slots.items()
        adapter = get_adapter(loss.adapter, loss.options)
        return [
            f"from {module} import {ONE_SLOT_CLASS}; loss = {ONE_SLOT_CLASS}()  # needs only torch",
            f"value = loss({', '.join(adapter.arguments)})  # a scalar with a graph: value.backward()",
        ]
    terms = " + ".join(
        f'losses["{slot}"]({", ".join(get_adapter(loss.adapter, loss.options).arguments)})'
        for slot, loss in slots.items()
    )
    return [
        f"from {module} import build_losses; losses = build_losses()  # needs only torch",
        f"value = {terms}",
    ]


def module_source(slots: Mapping[str, SlotLoss], header: str = "", module: str = "loss") -> str:
    """Python source of the loss: a one-slot file defines ``Loss``; a multi-slot file one class
    per slot, ``build_losses()`` (a ``ModuleDict``) and ``SearchedLosses`` (all slots in one
    module).

    Args:
        slots: slot name -> :class:`SlotLoss`.
        header: text for the module docstring (task, metric, fitness...).
        module: the file's module name, for the usage lines of the docstring.
    """
    trees: list[str] = []
    used: set[str] = set()
    classes: list[str] = []
    for slot, loss in slots.items():
        signature = loss.signature
        nodes = parse_tree(loss.tree, signature)
        loss = SlotLoss(str(nodes), loss.adapter, loss.options)  # canonical: names, parens, commas
        code = tree_code(nodes, signature, name=f"{slot}_tree")
        trees.append(code.source)
        used.update(code.primitives)
        classes.append(
            _slot_class(slot, loss, code.name, len(signature.inputs), class_name(slot, len(slots)))
        )
    lines = usage(slots, module)
    header = (header or "Loss found by gp-loss.").replace("\\", "\\\\").replace('"', '\\"')
    parts = [
        f'"""{header}\n\nUse:  {lines[0]}\n      {lines[1]}\n\nGenerated by gp-loss; needs only torch."""\n',
        "from typing import List, Tuple\n\nimport torch\nimport torch.nn.functional as F\n\nTensor = torch.Tensor\n",
    ]
    if any(PRIMITIVES[p].kind == "aggregation" for p in used):
        parts.append(_source(aggregation._is_nchw))
    parts += [_source(PRIMITIVES[p].fn) for p in sorted(used, key=function_name)]
    for adapter in sorted({loss.adapter for loss in slots.values()}):
        parts.append(_source(get_adapter(adapter).function))
    parts.append(_source(valid_mean))
    parts += trees
    parts += classes
    if len(slots) == 1:
        return "\n\n".join(part.rstrip("\n") + "\n" for part in parts)
    parts.append(_container_class(slots))
    entries = ", ".join(f"{slot!r}: {class_name(slot)}()" for slot in slots)
    parts.append(
        "def build_losses() -> torch.nn.ModuleDict:\n"
        '    """All slots\' losses, keyed by slot name."""\n'
        f"    return torch.nn.ModuleDict({{{entries}}})\n"
    )
    return "\n\n".join(part.rstrip("\n") + "\n" for part in parts)
