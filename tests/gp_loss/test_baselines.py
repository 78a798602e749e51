"""Baseline trees equal their torch references up to the mean-of-tree constant."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, generalized_box_iou_loss

from gp_loss.core.baselines import BASELINES, get_baseline, register_baseline
from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.loss_module import TreeLoss

SEG = SlotSignature("softmax_onehot", spatial=True)
BOXES = SlotSignature("box_iou_areas")


def _close(a, b) -> bool:
    return torch.allclose(a, b, rtol=1e-5, atol=0)


@pytest.fixture
def seg_batch():
    torch.manual_seed(0)
    return torch.randn(4, 6, 8, 8), torch.randint(0, 6, (4, 8, 8))


@pytest.fixture
def boxes():
    torch.manual_seed(0)
    xy = torch.rand(32, 2) * 20
    pred = torch.cat([xy, xy + torch.rand(32, 2) * 8 + 0.5], dim=1)
    target = pred + torch.randn(32, 4)
    target[:, 2:] = torch.max(target[:, 2:], target[:, :2] + 0.5)
    return pred, target


def test_cross_entropy_is_torch_cross_entropy_over_c(seg_batch):
    logits, labels = seg_batch
    ours = TreeLoss(get_baseline("cross_entropy").tree, SEG)(logits, labels)
    assert _close(ours, F.cross_entropy(logits, labels) / logits.shape[1])
    vec_logits, vec_labels = logits[:, :, 0, 0], labels[:, 0, 0]
    ours = TreeLoss(get_baseline("cross_entropy").tree, SEG)(vec_logits, vec_labels)
    assert _close(ours, F.cross_entropy(vec_logits, vec_labels) / 6)


def test_cross_entropy_with_ignore_index(seg_batch):
    logits, labels = seg_batch
    labels = labels.clone()
    labels[:, :3] = 255
    ours = TreeLoss(get_baseline("cross_entropy").tree, SEG)(logits, labels)
    assert _close(ours, F.cross_entropy(logits, labels, ignore_index=255) / 6)


def test_mse_on_probabilities(seg_batch):
    logits, labels = seg_batch
    ours = TreeLoss(get_baseline("mse").tree, SEG)(logits, labels)
    reference = F.mse_loss(torch.softmax(logits, 1), F.one_hot(labels, 6).permute(0, 3, 1, 2).float())
    assert _close(ours, reference)


def test_soft_iou_against_hand_written(seg_batch):
    logits, labels = seg_batch
    p = torch.softmax(logits, 1)
    y = F.one_hot(labels, 6).permute(0, 3, 1, 2).float()
    inter = (p * y).sum(dim=(0, 2, 3))
    union = (p + y - p * y).sum(dim=(0, 2, 3))
    soft_iou_loss = 1 - (inter / union).mean()
    ours = TreeLoss(get_baseline("soft_iou").tree, SEG)(logits, labels)
    assert _close(ours, soft_iou_loss - 1)


def test_dice_against_hand_written(seg_batch):
    logits, labels = seg_batch
    labels = labels.clone()
    labels[0, :2] = 255  # ignored pixels count in neither sum
    keep = (labels != 255)[:, None].float()
    p = torch.softmax(logits, 1) * keep
    y = F.one_hot(labels.clamp(max=5), 6).permute(0, 3, 1, 2).float() * keep
    dice = 2 * (p * y).sum(dim=(0, 2, 3)) / (p + y).sum(dim=(0, 2, 3))
    ours = TreeLoss(get_baseline("dice").tree, SEG)(logits, labels)
    assert _close(ours, (1 - dice.mean()) / 2 - 0.5)


def test_focal_against_torch_cross_entropy(seg_batch):
    logits, labels = seg_batch
    labels = labels.clone()
    labels[1, 3:] = 255
    ce = F.cross_entropy(logits, labels, reduction="none", ignore_index=255)
    focal = ((1 - torch.exp(-ce)) ** 2 * ce)[labels != 255].mean()
    ours = TreeLoss(get_baseline("focal").tree, SEG)(logits, labels)
    assert _close(ours, focal / 6)


def test_iou_and_giou_against_torchvision(boxes):
    pred, target = boxes
    iou = TreeLoss(get_baseline("iou").tree, BOXES)(pred, target)
    assert _close(iou, (1 - box_iou(pred, target).diagonal()).mean() - 1)
    giou = TreeLoss(get_baseline("giou").tree, BOXES)(pred, target)
    assert _close(giou, generalized_box_iou_loss(pred, target, reduction="mean") - 2)


def test_gradients_match_torch(seg_batch):
    logits, labels = seg_batch
    a, b = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    TreeLoss(get_baseline("cross_entropy").tree, SEG)(a, labels).backward()
    (F.cross_entropy(b, labels) / 6).backward()
    assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-9)


def test_registry_refuses_duplicates_and_lists_names():
    assert {"cross_entropy", "soft_iou", "mse", "iou", "giou"} <= set(BASELINES)
    with pytest.raises(ValueError, match="twice"):
        register_baseline("mse", "softmax_onehot", "y", "")
    with pytest.raises(GpLossError, match="known: giou, iou"):
        get_baseline("smooth_l1", adapter="box_iou_areas")
