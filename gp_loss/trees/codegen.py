"""Tree -> straight-line torch code: one SSA statement per node, no nested-call ``eval``.

The same source serves the search (compiled once per tree string and cached) and the
standalone export, so what is searched is exactly what is exported. Generation is iterative,
so trees thousands of levels deep compile; identical subtrees are computed once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from deap import gp

from gp_loss.core.signature import SlotSignature
from gp_loss.trees.intervals import ONE, RULES, UNBOUNDED, Interval, without_saturation
from gp_loss.trees.space import CONSTANT_ONE
from primitives import EPS, PRIMITIVES

#: Plain torch forms used when interval analysis proves the safety clamp is a no-op.
_PLAIN = {"add": "{0} + {1}", "mul": "{0} * {1}", "square": "{0} * {0}", "exp": "torch.exp({0})"}
#: Cheaper exact forms for operands proven non-negative (log needs no sign handling there).
_NON_NEGATIVE = {"log": "torch.where({0} > 0, torch.log(torch.clamp({0}, min=" + repr(EPS) + ")), 0.0)"}
#: Primitives that need no safety at all; written inline for readable exports.
_ALWAYS_PLAIN = {"neg": "-{0}"}


@dataclass(frozen=True)
class TreeCode:
    """Generated source of one tree function.

    Attributes:
        source: Python source of ``def <name>(<inputs>) -> Tensor``.
        name: the function's name.
        primitives: names of the primitives the source calls (for standalone export).
    """

    source: str
    name: str
    primitives: tuple[str, ...]


def function_name(primitive: str) -> str:
    """Name of the torch function implementing ``primitive`` (``abs`` -> ``abs_``)."""
    return PRIMITIVES[primitive].fn.__name__


def tree_code(nodes: Sequence, signature: SlotSignature, name: str = "loss_tree") -> TreeCode:
    """Generate straight-line source for a tree given in DEAP prefix order.

    Args:
        nodes: a ``PrimitiveTree`` (or list of its ``Primitive``/``Terminal`` nodes).
        signature: the slot's signature: its adapter's inputs are the function's arguments, in
            order, and their declared ranges feed the interval analysis.
        name: the function's name.
    """
    adapter = signature.adapter_class
    inputs = adapter.inputs
    lines: list[str] = []
    used: set[str] = set()
    seen: dict[tuple, str] = {}  # (primitive, argument vars) -> var: common subexpressions
    stack: list[tuple[str, Interval]] = []
    first = inputs[0]
    for node in reversed(nodes):
        if isinstance(node, gp.Terminal):
            value = node.value
            if value == CONSTANT_ONE:
                key = (CONSTANT_ONE,)
                if key not in seen:
                    seen[key] = f"t{len(lines)}"
                    lines.append(
                        f"    {seen[key]} = torch.ones((1, 1, 1, 1), dtype={first}.dtype, device={first}.device)"
                    )
                stack.append((seen[key], ONE))
            else:
                stack.append((value, adapter.ranges.get(value, UNBOUNDED)))
            continue
        args = [stack.pop() for _ in range(node.arity)]
        arg_vars = [a[0] for a in args]
        ranges = [a[1] for a in args]
        key = (node.name, *arg_vars)
        if key not in seen:
            var = f"t{len(lines)}"
            if node.name in _ALWAYS_PLAIN:
                expr = _ALWAYS_PLAIN[node.name].format(*arg_vars)
            elif node.name in _PLAIN and without_saturation(node.name, ranges):
                expr = _PLAIN[node.name].format(*arg_vars)
            elif node.name in _NON_NEGATIVE and ranges[0][0] >= 0:
                expr = _NON_NEGATIVE[node.name].format(*arg_vars)
            else:
                used.add(node.name)
                expr = f"{function_name(node.name)}({', '.join(arg_vars)})"
            lines.append(f"    {var} = {expr}")
            seen[key] = var
        stack.append((seen[key], RULES[node.name](*ranges)))
    ((result, _),) = stack
    weight = getattr(nodes, "weight", "1")
    if weight != "1":
        # C as a tensor (the channels counted by a sum), so that torch.export keeps the class
        # dimension dynamic instead of specialising on a Python number
        ones = f"torch.ones_like({first})"
        channels = f"({ones}.sum(dim=1, keepdim=True) if {first}.dim() > 1 else {ones})"
        factor = channels if weight == "C" else f"{float(weight)!r}"
        lines.append(f"    t{len(lines)} = {result} * {factor}")
        result = f"t{len(lines) - 1}"
    params = ", ".join(f"{arg}: Tensor" for arg in inputs)
    body = "\n".join(lines) if lines else ""
    source = f"def {name}({params}) -> Tensor:\n" + (body + "\n" if body else "") + f"    return {result}\n"
    return TreeCode(source, name, tuple(sorted(used)))


def _namespace() -> dict:
    space: dict = {"torch": torch, "Tensor": torch.Tensor}
    space.update({p.fn.__name__: p.fn for p in PRIMITIVES.values()})
    return space


@functools.lru_cache(maxsize=4096)
def compile_tree(tree: str, signature: SlotSignature) -> Callable[..., torch.Tensor]:
    """Compile a tree string into a torch function of the slot's inputs (cached by string).

    The string is parsed against the slot's primitive set first, so nothing unknown runs.
    """
    from gp_loss.trees.parse import parse_tree  # local: parse imports space, as we do

    nodes = parse_tree(tree, signature)
    code = tree_code(nodes, signature)
    space = _namespace()
    exec(compile(code.source, f"<gp-loss tree {tree[:60]}>", "exec"), space)
    return space[code.name]
