"""The sigmoid_binary adapter (Mask R-CNN's masks) against torch's own binary cross-entropy."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from gp_loss.adapters import get_adapter
from gp_loss.core.baselines import get_baseline
from gp_loss.core.signature import SlotSignature
from gp_loss.export.formats import export
from gp_loss.trees.best_json import BestLoss, SlotLoss
from gp_loss.trees.loss_module import TreeLoss, load_loss

SIGNATURE = SlotSignature("sigmoid_binary", spatial=True)


def _loss(name: str) -> TreeLoss:
    return TreeLoss(get_baseline(name, "sigmoid_binary").tree, SIGNATURE)


@pytest.mark.parametrize("shape", [(12,), (6, 14, 14), (3, 1, 28, 28)])
@pytest.mark.parametrize("soft", [False, True])
def test_cross_entropy_tree_is_half_of_binary_cross_entropy_with_logits(shape, soft):
    torch.manual_seed(0)
    logits = (3 * torch.randn(shape)).requires_grad_(True)
    targets = torch.rand(shape) if soft else (torch.rand(shape) > 0.5).float()  # RoIAlign'd targets are soft
    ours = _loss("bce")(logits, targets)
    theirs = F.binary_cross_entropy_with_logits(logits, targets) / 2
    assert torch.allclose(ours, theirs, atol=1e-6)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_theirs,) = torch.autograd.grad(theirs, logits)
    assert torch.allclose(g_ours, g_theirs, atol=1e-7)


def test_inputs_are_two_channel_probabilities_and_their_one_hot_target():
    logits = torch.tensor([[[-2.0, 0.0], [30.0, -30.0]]])  # (1, 2, 2)
    targets = torch.tensor([[[0.0, 1.0], [1.0, 0.25]]])
    (y_hat, y), valid = get_adapter("sigmoid_binary").forward(logits, targets)
    assert y_hat.shape == y.shape == (1, 2, 2, 2) and bool(valid.all())
    assert torch.allclose(y_hat.sum(dim=1), torch.ones(1, 2, 2))
    assert torch.allclose(y_hat[:, 1], torch.sigmoid(logits)) and torch.allclose(y[:, 1], targets)
    assert float(y_hat[0, 0, 1, 0]) > 0  # background of a logit of 30: sigmoid(-30), not 1 - 1 = 0


def test_dice_tree_against_hand_written():
    torch.manual_seed(1)
    logits, targets = torch.randn(4, 14, 14), (torch.rand(4, 14, 14) > 0.6).float()
    p = torch.sigmoid(logits)
    dice = [1 - 2 * (a * b).sum() / (a + b).sum() for a, b in ((p, targets), (1 - p, 1 - targets))]
    assert torch.allclose(_loss("binary_dice")(logits, targets), sum(dice) / 4 - 0.5, atol=1e-6)


def test_no_rois_gives_zero_with_a_graph():
    logits = torch.zeros(0, 14, 14, requires_grad=True)
    value = _loss("bce")(logits, torch.zeros(0, 14, 14))
    assert float(value) == 0.0
    value.backward()
    assert logits.grad.shape == (0, 14, 14)


def test_export_python_and_torchscript_reproduce_the_loss(tmp_path):
    best = BestLoss(
        "inst_coco", "mask_AP", None, {"mask": SlotLoss(get_baseline("bce").tree, "sigmoid_binary")}
    )
    logits, targets = torch.randn(5, 14, 14), (torch.rand(5, 14, 14) > 0.5).float()
    reference = F.binary_cross_entropy_with_logits(logits, targets) / 2
    assert torch.allclose(load_loss(best)(logits, targets), reference, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        export(best, "torchscript", tmp_path / "mask.pt")
        scripted = torch.jit.load(str(tmp_path / "mask.pt"))
    assert torch.allclose(scripted(logits, targets), reference, atol=1e-6)
