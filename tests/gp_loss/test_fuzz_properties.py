"""Property-based fuzzing (hypothesis) of trees of every slot signature, and the regression tests
of what ``bench fuzz`` found."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gp_loss.adapters import get_adapter, valid_mean
from gp_loss.bench.fuzz import EXTREME, inputs, signatures
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.best_json import SlotLoss
from gp_loss.trees.loss_module import TreeLoss, source_module
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.space import primitive_set

SIGNATURES = signatures()
CASES = {s: inputs(s) for s in SIGNATURES}


def trees(signature: SlotSignature) -> st.SearchStrategy[str]:
    """Tree strings over the signature's primitive set (hypothesis shrinks them to the smallest)."""
    pset = primitive_set(signature)
    terminals = [t.format() for t in pset.terminals[pset.ret]]
    unary = [p.name for p in pset.primitives[pset.ret] if p.arity == 1]
    binary = [p.name for p in pset.primitives[pset.ret] if p.arity == 2]
    return st.recursive(
        st.sampled_from(terminals),
        lambda child: st.one_of(
            st.tuples(st.sampled_from(unary), child).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(binary), child, child).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        ),
        max_leaves=10,
    )


def _check(signature: SlotSignature, tree: str) -> None:
    assert str(parse_tree(tree, signature)) == tree
    loss = TreeLoss(tree, signature)
    for name, prediction, target in CASES[signature]:
        pred = prediction.clone().requires_grad_(True)
        value = loss(pred, target)
        assert math.isfinite(float(value)), (tree, name)  # every value, at every input
        if value.requires_grad and not (name.startswith(EXTREME) and abs(float(name[len(EXTREME) :])) > 1):
            (grad,) = torch.autograd.grad(value, pred, allow_unused=True)
            assert grad is None or bool(torch.isfinite(grad).all()), (tree, name)
    prediction, target = CASES[signature][0][1:]
    exported = source_module({"s": SlotLoss(tree, signature.adapter)}).Loss()
    assert torch.allclose(exported(prediction, target), loss(prediction, target), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "signature", SIGNATURES, ids=lambda s: f"{s.adapter}{'-spatial' if s.spatial else ''}"
)
def test_random_trees_are_finite_and_export_the_same(signature):
    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(trees(signature))
    def check(tree):
        _check(signature, tree)

    check()


# -- what bench fuzz found -------------------------------------------------------------------------


def test_box_areas_saturate_instead_of_overflowing():
    """Found: with coordinates of 1e30 the areas were inf (1e30 * 1e30 in float32), so
    ``mean_nhw(union)`` and ``neg(log(union))`` were infinite."""
    adapter = get_adapter("box_iou_areas")
    pred = torch.tensor([[0.0, 0.0, 1e30, 1e30], [-1e30, -1e30, 1e30, 1e30]])
    target = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 5.0, 5.0]])
    areas, _ = adapter.forward(pred, target)
    assert all(bool(torch.isfinite(a).all()) for a in areas)
    signature = SlotSignature("box_iou_areas")
    for tree in ("mean_nhw(union)", "neg(log(union))", "add(enclose, union)", "sqrt(enclose)"):
        assert math.isfinite(float(TreeLoss(tree, signature)(pred, target))), tree


@pytest.mark.parametrize(
    ("adapter", "spatial", "tree"),
    [
        ("box_iou_areas", False, "mul(exp(union), mul(inter, enclose))"),
        ("box_iou_areas", False, "mul(exp(mean_nhw(enclose)), sqrt(add(inter, inter)))"),
        ("box_iou_areas", False, "sqrt(neg(mul(exp(union), mean_c(inter))))"),
        ("box_iou_areas", False, "mean_nhw(mul(sqrt(add(inter, inter)), exp(abs(enclose))))"),
        ("box_iou_areas", False, "mul(sqrt(neg(inter)), exp(mean_c(union)))"),
        (
            "box_iou_areas",
            False,
            "mul(abs(exp(square(add(add(enclose, union), log(inter))))), mean_c(tanh(neg(mul(add(inter, inter), neg(enclose))))))",
        ),
        ("sigmoid_binary", True, "exp(mean_nhw(inv(add(y, y_hat))))"),
        (
            "softmax_onehot",
            False,
            "mul(exp(square(neg(exp(exp(y))))), sqrt(add(tanh(neg(square(y_hat))), inv(log(exp(y_hat))))))",
        ),
    ],
)
def test_exp_saturates_where_products_do_so_its_slope_times_an_input_stays_finite(adapter, spatial, tree):
    """Found (10,000 trees per signature): with exp clamped at e**80 ~ 5.5e34 these gradients
    overflowed on huge boxes (areas 1e8), full masks and huge or confident logits; exp now stops at
    1e30 like ``mul``."""
    _check(SlotSignature(adapter, spatial), tree)


def test_the_mean_of_huge_values_over_many_elements_stays_finite():
    """A mean of values near 5.5e34 (exp's old cap) over 360,000 elements summed to inf before dividing."""
    out = torch.full((8, 11, 64, 64), 5.5e34)
    assert math.isfinite(float(valid_mean(out, torch.ones(8, 1, 64, 64, dtype=torch.bool), out)))
    logits = torch.full((8, 11, 64, 64), 100.0)
    labels = torch.zeros(8, 64, 64, dtype=torch.long)
    loss = TreeLoss("add(exp(y_hat), exp(y))", SlotSignature("softmax_onehot", True))
    assert math.isfinite(float(loss(logits, labels)))


def test_sums_saturate_like_products():
    """``add`` saturates at 1e30 as ``mul`` does: a sum of two huge finite inputs stays finite."""
    loss = TreeLoss("add(y_hat, add(y_hat, y_hat))", SlotSignature("regression"))
    huge = torch.full((4, 1), 3e38)  # finite in float32; 6e38 is not
    assert not bool(torch.isfinite(huge + huge).all())
    assert math.isfinite(float(loss(huge, torch.zeros(4, 1))))
