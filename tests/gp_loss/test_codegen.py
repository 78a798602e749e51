"""Tree -> straight-line torch code."""

from __future__ import annotations

import random

import pytest
import torch

from gp_loss.core.signature import SlotSignature
from gp_loss.testing import interpret
from gp_loss.trees.codegen import compile_tree, tree_code
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.space import LossTree, primitive_set, random_tree

SPATIAL = SlotSignature("softmax_onehot", spatial=True, constant_one=True)
BOXES = SlotSignature("box_iou_areas")


def _inputs(signature: SlotSignature, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    if signature.adapter == "softmax_onehot":
        y_hat = torch.softmax(3 * torch.randn(3, 4, 5, 5, generator=gen), dim=1)
        y_hat[0, 0, 0, 0] = 0.0  # exact zeros exercise the safe branches
        labels = torch.randint(0, 4, (3, 5, 5), generator=gen)
        y = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float()
        return {"y_hat": y_hat, "y": y}
    areas = torch.rand(3, 6, 1, 1, 1, generator=gen) * 5
    return {"inter": areas[0], "union": areas[0] + areas[1], "enclose": areas[0] + areas[1] + areas[2]}


def _values_and_grads(fn, env):
    leaves = {k: v.clone().requires_grad_(True) for k, v in env.items()}
    out = fn(leaves)
    if not out.requires_grad:  # a tree of constants only
        return out, [torch.zeros_like(v) for v in leaves.values()]
    grads = torch.autograd.grad(out.sum(), list(leaves.values()), allow_unused=True)
    return out, [torch.zeros_like(v) if g is None else g for g, v in zip(grads, leaves.values())]


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = torch.broadcast_tensors(a, b)
    return torch.allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("signature", [SPATIAL, BOXES], ids=["softmax_onehot", "box_iou_areas"])
def test_generated_code_matches_reference_interpreter(signature):
    random.seed(11)
    for i in range(150):
        tree = random_tree(signature, 1, 6)
        env = _inputs(signature, i)
        compiled = compile_tree(str(tree), signature)
        ours, our_grads = _values_and_grads(lambda e, f=compiled: f(*(e[n] for n in signature.inputs)), env)
        ref, ref_grads = _values_and_grads(lambda e, t=tree: interpret(t, e), env)
        assert _close(ours, ref), str(tree)
        for g1, g2 in zip(our_grads, ref_grads):
            assert _close(g1, g2), f"gradient of {tree}"


def test_trees_deeper_than_300_compile_and_run():
    depth = 400
    text = "y_hat"
    for level in range(depth):
        text = ("tanh({})", "neg({})", "add({}, y)", "mul(y_hat, {})")[level % 4].format(text)
    tree = parse_tree(text, SPATIAL)
    assert tree.height == depth
    fn = compile_tree(text, SPATIAL)
    env = _inputs(SPATIAL, 0)
    out = fn(env["y_hat"], env["y"])
    assert out.shape == (3, 4, 5, 5) and torch.isfinite(out).all()


def test_one_statement_per_node_and_shared_subtrees_once():
    tree = parse_tree("add(mul(y, log(y_hat)), mul(y, log(y_hat)))", SPATIAL)
    source = tree_code(tree, SPATIAL).source
    assert "eval" not in source
    assert source.count("log(") >= 1 and source.count(" = ") == 3  # log, mul, add: shared mul once


def test_cache_by_string():
    a = compile_tree("neg(mul(y, log(y_hat)))", SPATIAL)
    assert compile_tree("neg(mul(y, log(y_hat)))", SPATIAL) is a


def test_clamps_dropped_only_when_proven_no_op():
    safe = tree_code(parse_tree("mul(y, log(y_hat))", SPATIAL), SPATIAL).source
    assert "mul(" not in safe  # |y| <= 1 and |log| <= 27.7: the saturation cannot trigger
    capped = tree_code(parse_tree("mul(exp(inv(y_hat)), y)", SPATIAL), SPATIAL).source
    assert "mul(" not in capped  # exp <= 1e30 and y <= 1: the product cannot pass 1e30 either
    unsafe = tree_code(parse_tree("mul(exp(inv(y_hat)), exp(y_hat))", SPATIAL), SPATIAL).source
    assert "mul(" in unsafe  # up to 1e30 * e^1
    boxes = tree_code(parse_tree("mul(inter, union)", BOXES), BOXES).source
    assert "mul(" in boxes  # areas are unbounded


def test_saturation_kept_where_it_matters():
    big = torch.full((1, 1, 1, 1), 1e20)
    fn = compile_tree("mul(inter, union)", BOXES)
    assert torch.isfinite(fn(big, big, big)).all()
    assert isinstance(parse_tree("y", SPATIAL), LossTree)
    assert primitive_set(SPATIAL) is primitive_set(SlotSignature("softmax_onehot", True, True))
