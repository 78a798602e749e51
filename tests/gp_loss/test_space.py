"""The DEAP search space: primitive sets, random trees, variation, limits, pickling."""

from __future__ import annotations

import multiprocessing
import pickle
import random

import pytest
from deap import gp

from gp_loss.core.settings import KNOWN_MUTATIONS, MUTATIONS
from gp_loss.core.signature import SlotSignature
from gp_loss.testing import spawn_roundtrip
from gp_loss.trees.space import LossGenome, LossTree, primitive_set, random_tree, tree_inputs
from gp_loss.trees.variation import crossover, mutate, within_limits

VECTOR = SlotSignature("softmax_onehot")
SPATIAL = SlotSignature("softmax_onehot", spatial=True)
BOXES = SlotSignature("box_iou_areas")


def _names(pset) -> set[str]:
    return {p.name for p in pset.primitives[pset.ret]}


def test_pooling_only_for_spatial_slots():
    assert {"maxpool3", "minpool3"} <= _names(primitive_set(SPATIAL))
    assert not {"maxpool3", "minpool3"} & _names(primitive_set(VECTOR))
    assert len(_names(primitive_set(SPATIAL))) == 14
    assert len(_names(primitive_set(VECTOR))) == 12


def test_inputs_per_adapter_and_optional_constant():
    terms = lambda sig: {t.format() for t in primitive_set(sig).terminals[primitive_set(sig).ret]}  # noqa: E731
    assert terms(VECTOR) == {"y_hat", "y"}
    assert terms(BOXES) == {"inter", "union", "enclose"}
    assert terms(SlotSignature("softmax_onehot", constant_one=True)) == {"y_hat", "y", "one"}


@pytest.mark.parametrize("depth", [(1, 1), (1, 3), (2, 4)])
def test_random_trees_respect_depth(depth):
    random.seed(1)
    for _ in range(50):
        tree = random_tree(SPATIAL, *depth)
        assert isinstance(tree, LossTree)
        assert depth[0] <= tree.height <= depth[1]
        assert tree_inputs(tree) <= {"y_hat", "y"}


@pytest.mark.parametrize("kind", KNOWN_MUTATIONS)
def test_each_mutation_changes_trees_and_keeps_limits(kind):
    random.seed(2)
    changed = 0
    for _ in range(40):
        parent = random_tree(VECTOR, 2, 4)
        before = str(parent)
        child, used = mutate(parent, VECTOR, kind, max_height=6, max_nodes=20)
        assert used == kind
        assert str(parent) == before, "the parent must not be modified"
        assert within_limits(child, 6, 20)
        changed += str(child) != before
    assert changed >= 10


def test_mutation_that_breaks_a_limit_returns_the_parent():
    random.seed(3)
    parent = random_tree(VECTOR, 3, 3)
    for _ in range(20):
        child, _ = mutate(parent, VECTOR, "insert", max_height=parent.height, max_nodes=len(parent))
        assert str(child) == str(parent)


def test_shrink_and_insert_change_size():
    random.seed(4)
    tree = LossTree(gp.PrimitiveTree.from_string("neg(mul(y, log(y_hat)))", primitive_set(VECTOR)))
    smaller, _ = mutate(tree, VECTOR, "shrink")
    bigger, _ = mutate(tree, VECTOR, "insert")
    assert len(smaller) < len(tree) < len(bigger)


def test_ratio_divides_a_subtree_that_reads_the_prediction_by_a_sum_and_reaches_dice():
    random.seed(6)
    intersection = "neg(mul(y_hat, y))"
    children = set()
    for _ in range(400):
        tree = LossTree(gp.PrimitiveTree.from_string(intersection, primitive_set(SPATIAL)))
        child, _ = mutate(tree, SPATIAL, "ratio")
        text = str(child)
        children.add(text)
        # both operator nodes read y_hat: the product or the whole tree is divided by a sum
        assert text.startswith(
            (
                "neg(mul(mean_nhw(mul(y_hat, y)), inv(mean_nhw(",
                "mul(mean_nhw(neg(mul(y_hat, y))), inv(mean_nhw(",
            )
        )
    # one step from the intersection to Dice's tree (gp_loss/core/baselines.py) and to recall
    assert "neg(mul(mean_nhw(mul(y_hat, y)), inv(mean_nhw(add(y_hat, y)))))" in children
    assert "neg(mul(mean_nhw(mul(y_hat, y)), inv(mean_nhw(y))))" in children
    assert MUTATIONS == ("insert", "shrink", "replace", "subtree")  # DEAP's: every task's default


def test_crossover_swaps_subtrees_within_limits():
    random.seed(5)
    swapped = 0
    for _ in range(30):
        a, b = random_tree(VECTOR, 2, 4), random_tree(VECTOR, 2, 4)
        parents = (str(a), str(b))
        c, d = crossover(a, b, max_height=5, max_nodes=30)
        assert within_limits(c, 5, 30) and within_limits(d, 5, 30)
        assert (str(a), str(b)) == parents  # the parents are left as they were
        swapped += {str(c), str(d)} != {str(a), str(b)}
    assert swapped >= 10


def test_individuals_pickle_in_process():
    tree = random_tree(BOXES)
    tree.fitness.values = (0.5,)
    again = pickle.loads(pickle.dumps(tree))
    assert str(again) == str(tree) and again.fitness.values == (0.5,)
    genome = LossGenome([random_tree(VECTOR), random_tree(BOXES)])
    assert str(pickle.loads(pickle.dumps(genome))) == str(genome)


def test_individuals_unpickle_under_spawn():
    tree = random_tree(SPATIAL, 2, 3)
    tree.fitness.values = (0.25,)
    genome = LossGenome([tree, random_tree(BOXES)])
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.map(spawn_roundtrip, [tree, genome])
    assert got[0] == ("LossTree", str(tree), (0.25,))
    assert got[1][:2] == ("LossGenome", str(genome))
