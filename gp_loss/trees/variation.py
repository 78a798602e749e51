"""Variation operators on loss trees: the four mutations, one-point crossover, size limits.

Thin, limit-aware wrappers over DEAP's own operators (``mutInsert``, ``mutShrink``,
``mutNodeReplacement``, ``mutUniform``, ``cxOnePoint``). Every operator works on copies and
falls back to the unchanged parent when the result breaks the depth or node limit.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable

from deap import gp

from gp_loss.core.settings import MAX_HEIGHT, MAX_NODES
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.space import LossTree, primitive_set

MUTATIONS: tuple[str, ...] = ("insert", "shrink", "replace", "subtree")

#: Defaults: DEAP's customary height limit 17; node cap keeps a proxy training's graph small.


def within_limits(tree: gp.PrimitiveTree, max_height: int = MAX_HEIGHT, max_nodes: int = MAX_NODES) -> bool:
    """True if the tree respects both size limits."""
    return len(tree) <= max_nodes and tree.height <= max_height


def _operator(kind: str, signature: SlotSignature) -> Callable[[LossTree], tuple[LossTree]]:
    pset = primitive_set(signature)
    if kind == "insert":
        return functools.partial(gp.mutInsert, pset=pset)
    if kind == "shrink":
        return gp.mutShrink
    if kind == "replace":
        return functools.partial(gp.mutNodeReplacement, pset=pset)
    if kind == "subtree":
        expr = functools.partial(gp.genHalfAndHalf, pset=pset, min_=0, max_=2)
        return functools.partial(gp.mutUniform, expr=expr, pset=pset)
    raise ValueError(f"unknown mutation {kind!r}; known: {', '.join(MUTATIONS)}")


def mutate(
    tree: LossTree,
    signature: SlotSignature,
    kind: str | None = None,
    max_height: int = MAX_HEIGHT,
    max_nodes: int = MAX_NODES,
) -> tuple[LossTree, str]:
    """A mutated copy of ``tree`` and the mutation used (random among :data:`MUTATIONS` if None).

    The copy equals the parent when the mutation broke a limit (the caller may retry).
    """
    kind = kind or random.choice(MUTATIONS)
    (child,) = _operator(kind, signature)(copy.deepcopy(tree))
    if not within_limits(child, max_height, max_nodes):
        return copy.deepcopy(tree), kind
    return child, kind


def crossover(
    first: LossTree, second: LossTree, max_height: int = MAX_HEIGHT, max_nodes: int = MAX_NODES
) -> tuple[LossTree, LossTree]:
    """One-point crossover on copies; an offspring breaking a limit is replaced by its parent."""
    a, b = gp.cxOnePoint(copy.deepcopy(first), copy.deepcopy(second))
    a = a if within_limits(a, max_height, max_nodes) else copy.deepcopy(first)
    b = b if within_limits(b, max_height, max_nodes) else copy.deepcopy(second)
    return a, b
