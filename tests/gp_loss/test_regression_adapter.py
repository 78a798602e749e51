"""The regression adapter and its baselines against torch's own losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gp_loss.core.baselines import get_baseline
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.best_json import BestLoss, SlotLoss
from gp_loss.trees.loss_module import TreeLoss, load_loss

SIGNATURE = SlotSignature("regression", spatial=True, constant_one=True)


def _loss(name: str) -> TreeLoss:
    return TreeLoss(get_baseline(name, "regression").tree, SIGNATURE)


@pytest.mark.parametrize("shape", [(16,), (16, 3), (4, 2, 5, 6)])
def test_mse_and_l1_trees_equal_torch(shape):
    torch.manual_seed(0)
    prediction, target = torch.randn(shape, requires_grad=True), torch.randn(shape)
    for name, reference in (("squared_error", F.mse_loss), ("absolute_error", F.l1_loss)):
        ours, theirs = _loss(name)(prediction, target), reference(prediction, target)
        assert torch.allclose(ours, theirs, atol=1e-6)
        (g_ours,) = torch.autograd.grad(ours, prediction)
        (g_theirs,) = torch.autograd.grad(theirs, prediction)
        assert torch.allclose(g_ours, g_theirs, atol=1e-6)


def test_pseudo_huber_tracks_smooth_l1():
    residual = torch.linspace(-30, 30, 601)
    target = torch.zeros_like(residual)
    pseudo = torch.stack([_loss("pseudo_huber")(r[None], t[None]) for r, t in zip(residual, target)])
    smooth = F.smooth_l1_loss(residual, target, reduction="none", beta=1.0)
    assert torch.allclose(pseudo, torch.sqrt(1 + residual**2) - 1, atol=1e-5)  # its own formula
    assert (pseudo - smooth).abs().max() <= 0.5 + 1e-6  # never more than 0.5 from smooth L1
    assert torch.allclose(pseudo[:2].diff(), smooth[:2].diff(), rtol=0.01)  # slope -1 far left
    assert torch.allclose(pseudo[-2:].diff(), smooth[-2:].diff(), rtol=0.01)  # slope +1 far right


def test_nan_targets_are_missing_values():
    prediction = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    target = torch.tensor([0.0, float("nan"), 1.0, float("nan")])
    value = _loss("squared_error")(prediction, target)
    assert torch.allclose(value, torch.tensor((1.0 + 4.0) / 2))
    (grad,) = torch.autograd.grad(value, prediction)
    assert torch.equal(grad[[1, 3]], torch.zeros(2)) and torch.isfinite(grad).all()
    kept = TreeLoss(get_baseline("squared_error").tree, SIGNATURE, {"ignore_nan": False})
    assert torch.isnan(kept(prediction, target))


def test_exported_module_matches_the_search_loss():
    tree = get_baseline("pseudo_huber").tree
    module = load_loss(BestLoss("mine", "r2", None, {"fit": SlotLoss(tree, "regression")}))
    prediction, target = torch.randn(8, 2), torch.randn(8, 2)
    assert torch.allclose(module(prediction, target), TreeLoss(tree, SIGNATURE)(prediction, target))
