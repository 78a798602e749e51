"""DEAP search space: one ``PrimitiveSet`` per slot signature, individuals and random trees.

The individual classes are real module-level classes (not ``creator`` products), so that
pickling references ``gp_loss.trees.space`` and unpickles in any process, spawn included.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence

from deap import base, gp

from gp_loss.core.signature import SlotSignature
from primitives import PRIMITIVES

CONSTANT_ONE = "one"
#: A slot loss's weight (docs/architecture.md section 2): 1, the number of channels of its
#: adapter's inputs (``C``: the classes of softmax_onehot, 2 for sigmoid_binary's foreground and
#: background, the keypoints of heatmap), or 10. Written as a prefix of the tree string,
#: ``C * neg(mul(y, log(y_hat)))``; the mean-of-tree convention makes the cross-entropy tree
#: CE / C, so ``C *`` it is ``F.cross_entropy`` itself, and ``10 *`` is mmdetection's GIoU weight.
WEIGHTS: tuple[str, ...] = ("1", "C", "10")


class FitnessMax(base.Fitness):
    """Single-objective fitness: the task's target metric, higher is better."""

    weights = (1.0,)


class LossTree(gp.PrimitiveTree):
    """A loss tree for one slot: a DEAP ``PrimitiveTree`` with a fitness and a weight (one of
    :data:`WEIGHTS`; a copy keeps it, DEAP's operators work in place and leave it)."""

    def __init__(self, content: Sequence, weight: str | None = None) -> None:
        super().__init__(content)
        self.fitness = FitnessMax()
        self.weight = weight if weight is not None else getattr(content, "weight", "1")

    def __str__(self) -> str:
        text = super().__str__()
        weight = getattr(self, "weight", "1")
        return text if weight == "1" else f"{weight} * {text}"


class LossGenome(list):
    """One :class:`LossTree` per slot (in the task's slot order), with one fitness."""

    def __init__(self, trees: Sequence[LossTree] = ()) -> None:
        super().__init__(trees)
        self.fitness = FitnessMax()

    def __str__(self) -> str:
        return " | ".join(str(t) for t in self)


@functools.cache
def primitive_set(signature: SlotSignature) -> gp.PrimitiveSet:
    """The (cached) DEAP primitive set of a slot signature.

    Element-wise and mean primitives always; pooling only for spatial slots; the terminal
    ``one`` only when ``signature.constant_one``.
    """
    name = f"{signature.adapter}{'_spatial' if signature.spatial else ''}{'_one' if signature.constant_one else ''}"
    pset = gp.PrimitiveSet(name, len(signature.inputs))
    pset.renameArguments(**{f"ARG{i}": arg for i, arg in enumerate(signature.inputs)})
    for prim in PRIMITIVES.values():
        if prim.spatial and not signature.spatial:
            continue
        pset.addPrimitive(prim.fn, prim.arity, name=prim.name)
    if signature.constant_one:
        pset.addTerminal(1.0, name=CONSTANT_ONE)
    return pset


def random_tree(signature: SlotSignature, min_depth: int = 1, max_depth: int = 3) -> LossTree:
    """A random tree by DEAP's half-and-half (grow or full), height in [min_depth, max_depth]."""
    return LossTree(gp.genHalfAndHalf(primitive_set(signature), min_depth, max_depth))


def tree_inputs(tree: gp.PrimitiveTree) -> set[str]:
    """Names of the input terminals a tree uses."""
    return {
        node.value
        for node in tree
        if isinstance(node, gp.Terminal) and isinstance(node.value, str) and node.value != CONSTANT_ONE
    }


def seed_everything(seed: int) -> None:
    """Seed Python's ``random`` (which DEAP's operators use)."""
    random.seed(seed)
