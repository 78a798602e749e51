"""Each reference baseline equals its reference (torchvision.ops, torch.nn.functional, the
reference code's formula written out again, or a hand-computed case) on fixed inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou

from gp_loss.results.final_training import resolve_losses
from tasks import get_task
from tasks.cls_digits import softmax_mse
from tasks.detection.losses import CIoULoss, GIoULoss, IoULoss
from tasks.pose.losses import AdaptiveWingLoss, JointsMSELoss
from tasks.segmentation.losses import CrossEntropy, DiceLoss, FocalLoss

PRED = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 8.0, 12.0], [5.0, 5.0, 9.0, 7.0]])
TARGET = torch.tensor([[1.0, 1.0, 10.0, 11.0], [0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 6.0, 6.0]])


def test_iou_loss_is_mmdetections_log_iou_weighted_10_over_all_sampled_rois():
    iou = box_iou(PRED, TARGET).diagonal()
    expected = 10 * (-iou.log()).sum() / 64
    assert torch.allclose(IoULoss()(PRED, TARGET, sampled=64), expected)
    disjoint = torch.tensor([[20.0, 20.0, 21.0, 21.0]])
    assert float(IoULoss(1)(disjoint, TARGET[:1], sampled=1)) == pytest.approx(-math.log(1e-6))


def test_giou_loss_is_torchvisions_weighted_10_over_all_sampled_rois():
    giou = generalized_box_iou(PRED, TARGET).diagonal()
    assert torch.allclose(GIoULoss()(PRED, TARGET, sampled=32), 10 * (1 - giou).sum() / 32)


def test_ciou_loss_is_torchvisions_above_iou_half_and_diou_below_weighted_12():
    close = TARGET[:2] + torch.tensor([[0.5, -0.3, 0.2, 0.4], [0.1, 0.2, -0.4, 0.3]])
    assert bool((box_iou(close, TARGET[:2]).diagonal() > 0.5).all())
    reference = complete_box_iou_loss(close, TARGET[:2], reduction="sum")
    assert torch.allclose(CIoULoss()(close, TARGET[:2], sampled=8), 12 * reference / 8, rtol=1e-5)
    far = PRED[2:]
    assert float(box_iou(far, TARGET[2:]).diagonal()) < 0.5
    assert torch.allclose(
        CIoULoss(1)(far, TARGET[2:], sampled=1), distance_box_iou_loss(far, TARGET[2:]).sum()
    )


def test_box_losses_of_no_positive_roi_are_zero_with_a_graph():
    empty = torch.zeros(0, 4, requires_grad=True)
    value = GIoULoss()(empty, empty.detach(), sampled=64)
    value.backward()
    assert float(value.detach()) == 0.0 and empty.grad is not None


def test_the_rcnn_head_averages_a_reference_box_loss_over_every_sampled_roi():
    from tasks.detection.model import small_faster_rcnn

    heads = small_faster_rcnn(3).roi_heads
    torch.manual_seed(0)
    labels = [torch.tensor([1, 0, 2, 0, 0]), torch.tensor([0, 3, 0])]
    proposals = [PRED[[0, 1, 2, 0, 1]], PRED[[2, 0, 1]]]
    targets = [heads.box_coder.encode_single(TARGET[[0, 1, 2, 0, 1]], p) for p in proposals[:1]]
    targets.append(heads.box_coder.encode_single(TARGET[[2, 0, 1]], proposals[1]))
    logits, deltas = torch.randn(8, 4), torch.randn(8, 16) * 0.1
    heads.set_losses(F.cross_entropy, GIoULoss())
    cls, reg = heads.head_losses(logits, deltas, labels, targets, proposals)
    flat_labels, flat_props = torch.cat(labels), torch.cat(proposals)
    positive = torch.where(flat_labels > 0)[0]
    chosen = deltas.reshape(8, -1, 4)[positive, flat_labels[positive]]
    pred = heads.box_coder.decode_single(chosen, flat_props[positive])
    gt = torch.cat([TARGET[[0, 1, 2, 0, 1]], TARGET[[2, 0, 1]]])[positive]
    expected = 10 * (1 - generalized_box_iou(pred, gt).diagonal()).sum() / 8
    assert torch.allclose(reg, expected, rtol=1e-4)
    assert torch.allclose(cls, F.cross_entropy(logits, flat_labels))


@pytest.mark.parametrize(
    ("task_name", "name", "box", "weight"),
    [
        ("det_coco", "ce+iou", IoULoss, 10.0),
        ("det_coco", "ce+giou", GIoULoss, 10.0),
        ("det_coco", "ce+ciou", CIoULoss, 12.0),
        ("inst_coco", "ce+giou+bce", GIoULoss, 10.0),
    ],
)
def test_detection_references_train_the_classifier_with_cross_entropy_itself(task_name, name, box, weight):
    factory = get_task(task_name).reference_losses[name]
    losses = factory(None)
    assert losses["cls"] is F.cross_entropy
    assert isinstance(losses["reg"], box) and losses["reg"].weight == weight
    if task_name == "inst_coco":
        assert losses["mask"] is None  # torchvision's maskrcnn_loss: BCE with logits


def test_tree_forms_keep_their_names_and_their_scale():
    task = get_task("cls_digits")
    logits, labels = torch.randn(16, 10), torch.randint(0, 10, (16,))
    _, tree = resolve_losses(task, "tree:cross_entropy")
    _, reference = resolve_losses(task, "ce")
    assert torch.allclose(reference["cls"](logits, labels), F.cross_entropy(logits, labels))
    assert torch.allclose(tree["cls"](logits, labels), F.cross_entropy(logits, labels) / 10, rtol=1e-4)


def test_softmax_mse_is_torchs_mse_of_the_softmax_and_the_one_hot():
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    by_hand = ((torch.softmax(logits, 1) - torch.eye(4)[labels]) ** 2).sum() / 24
    assert torch.allclose(softmax_mse(logits, labels), by_hand)


# -- segmentation -----------------------------------------------------------------------------
def _logits(probs: list[list[float]]) -> torch.Tensor:
    """(1, C, 1, W) logits whose softmax over C is ``probs`` (one list per pixel)."""
    return torch.tensor(probs).log().T.reshape(1, len(probs[0]), 1, len(probs))


def test_segmentation_cross_entropy_is_torchs_with_void_ignored():
    logits, labels = torch.randn(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3))
    labels[0, 0, 0] = 255
    assert torch.allclose(CrossEntropy()(logits, labels), F.cross_entropy(logits, labels, ignore_index=255))


def test_dice_by_hand_absent_classes_count_as_zero_in_the_mean():
    logits = _logits([[0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    labels = torch.tensor([[[0, 0, 255]]])
    # class 0: 2 (0.5 + 0.7) / (0.5 + 0.7 + 2) = 0.75; classes 1 and 2 are absent: 0
    assert float(DiceLoss()(logits, labels)) == pytest.approx(0.25 / 3, rel=1e-5)
    labels = torch.tensor([[[0, 1, 255]]])
    # class 0: 2 x 0.5 / (1.2 + 1) ; class 1: 2 x 0.2 / (0.5 + 1); class 2 absent
    expected = ((1 - 1.0 / 2.2) + (1 - 0.4 / 1.5)) / 3
    assert float(DiceLoss()(logits, labels)) == pytest.approx(expected, rel=1e-5)


def test_focal_by_hand_and_cross_entropy_at_gamma_zero():
    logits = _logits([[0.5, 0.25, 0.25], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4]])
    labels = torch.tensor([[[0, 1, 255]]])
    expected = (0.5**2 * math.log(2) + 0.9**2 * math.log(10)) / 2
    assert float(FocalLoss()(logits, labels)) == pytest.approx(expected, rel=1e-5)
    logits, labels = torch.randn(2, 5, 4, 4), torch.randint(0, 5, (2, 4, 4))
    assert torch.allclose(FocalLoss(gamma=0)(logits, labels), F.cross_entropy(logits, labels))


# -- pose -------------------------------------------------------------------------------------
def simplebaseline_joints_mse(output, target, target_weight):
    """SimpleBaseline's JointsMSELoss(use_target_weight=True).forward, written out again."""
    batch_size, num_joints = output.size(0), output.size(1)
    preds = output.reshape((batch_size, num_joints, -1)).split(1, 1)
    gts = target.reshape((batch_size, num_joints, -1)).split(1, 1)
    loss = 0
    for idx in range(num_joints):
        pred, gt = preds[idx].squeeze(), gts[idx].squeeze()
        loss += 0.5 * torch.nn.MSELoss()(pred.mul(target_weight[:, idx]), gt.mul(target_weight[:, idx]))
    return loss / num_joints


def test_joints_mse_is_simplebaselines_with_target_weights():
    torch.manual_seed(0)
    heatmaps, targets = torch.randn(3, 5, 4, 6), torch.rand(3, 5, 4, 6)
    weight = torch.ones(3, 5, 1)
    weight[1, 2] = 0
    marked = targets.clone()
    marked[1, 2] = -1  # our layout marks the unlabelled keypoint itself
    expected = simplebaseline_joints_mse(heatmaps, targets, weight)
    assert torch.allclose(JointsMSELoss()(heatmaps, marked), expected)


def test_adaptive_wing_by_hand_on_both_branches_and_continuous_at_theta():
    alpha, omega, theta = 2.1, 14.0, 0.5

    def by_hand(y: float, y_hat: float) -> float:
        delta = abs(y - y_hat)
        if delta < theta:
            return omega * math.log(1 + delta ** (alpha - y))
        a = omega / (1 + theta ** (alpha - y)) * (alpha - y) * theta ** (alpha - y - 1)
        return a * delta - (theta * a - omega * math.log(1 + theta ** (alpha - y)))

    pairs = [(0.0, 0.2), (1.0, 0.7), (0.0, 1.5), (1.0, -0.2), (0.6, 0.6)]
    y = torch.tensor([p[0] for p in pairs]).reshape(1, 5, 1, 1)
    y_hat = torch.tensor([p[1] for p in pairs]).reshape(1, 5, 1, 1)
    expected = sum(by_hand(*p) for p in pairs) / 5
    assert float(AdaptiveWingLoss()(y_hat, y)) == pytest.approx(expected, rel=1e-5)
    for target in (0.0, 0.5, 1.0):
        below, above = by_hand(target, target + theta - 1e-6), by_hand(target, target + theta + 1e-6)
        assert below == pytest.approx(above, abs=1e-4)
    unlabelled = torch.full((1, 1, 2, 2), -1.0)
    value = AdaptiveWingLoss()(torch.randn(1, 1, 2, 2), unlabelled)
    assert float(value) == 0.0


@pytest.mark.parametrize("task_name", ["det_coco", "inst_coco"])
def test_weighted_tree_forms_are_the_references_at_their_weights(task_name):
    """The slot-wise anchor: ``C *`` the cross-entropy tree is F.cross_entropy, ``C *`` the BCE
    tree (C = 2) is F.binary_cross_entropy_with_logits, ``10 *`` the GIoU tree is 10 x
    torchvision's GIoU loss per positive RoI (minus its constant: the tree is 1 - GIoU - 2)."""
    task_cls = type(get_task(task_name, steps=2))  # the class's tables, no training
    trees = task_cls.baselines[task_cls.anchor_baseline]
    _, losses = resolve_losses(get_task(task_name, steps=2), task_cls.anchor_baseline)
    generator = torch.Generator().manual_seed(0)
    logits, labels = (
        torch.randn(16, 11, generator=generator),
        torch.randint(0, 11, (16,), generator=generator),
    )
    assert torch.allclose(losses["cls"](logits, labels), F.cross_entropy(logits, labels))
    giou = generalized_box_iou(PRED, TARGET).diagonal()
    assert torch.allclose(losses["reg"](PRED, TARGET), 10 * ((1 - giou).mean() - 2))
    assert trees["cls"].startswith("C * ") and trees["reg"].startswith("10 * ")
    if "mask" in trees:
        mask_logits = torch.randn(4, 14, 14, generator=generator)
        targets = (torch.rand(4, 14, 14, generator=generator) > 0.5).float()
        expected = F.binary_cross_entropy_with_logits(mask_logits, targets)
        assert torch.allclose(losses["mask"](mask_logits, targets), expected)
