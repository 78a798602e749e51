"""Variation operators on loss trees: the mutations, one-point crossover, size limits.

Thin, limit-aware wrappers over DEAP's own operators (``mutInsert``, ``mutShrink``,
``mutNodeReplacement``, ``mutUniform``, ``cxOnePoint``), plus one of ours, ``ratio``
(:func:`mut_ratio`). Every operator works on copies and falls back to the unchanged parent when
the result breaks the depth or node limit.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable, Sequence

from deap import gp

from gp_loss.core.settings import KNOWN_MUTATIONS, MAX_HEIGHT, MAX_NODES, MUTATIONS
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.space import LossTree, primitive_set


def mut_ratio(
    tree: gp.PrimitiveTree, pset: gp.PrimitiveSet, prediction: frozenset[str]
) -> tuple[gp.PrimitiveTree]:
    """In place: a random subtree ``S`` becomes ``mean_nhw(S) / mean_nhw(R)``, ``R`` a fresh
    random tree of depth 0 to 2 (DEAP half-and-half).

    The per-channel ratio of two sums over the batch and positions is what region losses are
    made of: Dice is ``mean_nhw(y_hat y) / mean_nhw(y_hat + y)``, IoU and Tversky likewise, and
    ``mean_nhw(y log y_hat) / mean_nhw(y)`` is cross-entropy balanced over the classes. DEAP's
    four mutations reach these forms only through several unlikely steps in a row. ``S`` is an
    operator node whose subtree reads an input of ``prediction`` where there is one.
    """
    nodes = [i for i, node in enumerate(tree) if node.arity > 0]
    reading = [
        i for i in nodes if any(n.arity == 0 and n.name in prediction for n in tree[tree.searchSubtree(i)])
    ]
    index = random.choice(reading or nodes or range(len(tree)))
    where = tree.searchSubtree(index)
    ops = pset.mapping
    ratio = [ops["mul"], ops["mean_nhw"], *tree[where], ops["inv"], ops["mean_nhw"]]
    tree[where] = ratio + gp.genHalfAndHalf(pset, 0, 2)
    return (tree,)


#: Defaults: DEAP's customary height limit 17; node cap keeps a proxy training's graph small.


def within_limits(tree: gp.PrimitiveTree, max_height: int = MAX_HEIGHT, max_nodes: int = MAX_NODES) -> bool:
    """True if the tree respects both size limits."""
    return len(tree) <= max_nodes and tree.height <= max_height


def operator(kind: str, signature: SlotSignature) -> Callable[[gp.PrimitiveTree], tuple[gp.PrimitiveTree]]:
    """The mutation ``kind`` (one of ``KNOWN_MUTATIONS``) on trees of ``signature``: a DEAP-style
    operator that changes the tree in place and returns it in a tuple, without size limits."""
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
    if kind == "ratio":
        return functools.partial(mut_ratio, pset=pset, prediction=signature.required_inputs[0])
    raise ValueError(f"unknown mutation {kind!r}; known: {', '.join(KNOWN_MUTATIONS)}")


def mutate(
    tree: LossTree,
    signature: SlotSignature,
    kind: str | None = None,
    max_height: int = MAX_HEIGHT,
    max_nodes: int = MAX_NODES,
    kinds: Sequence[str] = MUTATIONS,
) -> tuple[LossTree, str]:
    """A mutated copy of ``tree`` and the mutation used (random among ``kinds`` if None).

    The copy equals the parent when the mutation broke a limit (the caller may retry).
    """
    kind = kind or random.choice(kinds)
    (child,) = operator(kind, signature)(copy.deepcopy(tree))
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
