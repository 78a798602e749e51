"""Input adapters: shapes, ignore index, box areas."""

from __future__ import annotations

import torch
from torchvision.ops import box_area, box_iou

from gp_loss.adapters import box_iou_areas, softmax_onehot, valid_mean
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.loss_module import TreeLoss

SEG = SlotSignature("softmax_onehot", spatial=True)


def test_softmax_onehot_shapes_for_vectors_and_maps():
    (y_hat, y), valid = softmax_onehot(torch.randn(4, 5), torch.tensor([0, 1, 2, 4]), 255)
    assert y_hat.shape == y.shape == (4, 5, 1, 1) and valid.shape == (4, 1, 1, 1)
    assert torch.allclose(y_hat.sum(dim=1), torch.ones(4, 1, 1))
    assert torch.equal(y.argmax(dim=1).flatten(), torch.tensor([0, 1, 2, 4]))
    (y_hat, y), valid = softmax_onehot(torch.randn(2, 3, 4, 6), torch.randint(0, 3, (2, 4, 6)), 255)
    assert y_hat.shape == y.shape == (2, 3, 4, 6) and valid.shape == (2, 1, 4, 6)


def test_ignored_positions_change_neither_value_nor_gradient():
    torch.manual_seed(0)
    for tree in (
        "neg(mul(y, log(y_hat)))",
        "mean_nhw(square(add(y_hat, neg(y))))",
        "maxpool3(mul(y, y_hat))",
    ):
        loss = TreeLoss(tree, SEG)
        logits = torch.randn(2, 3, 6, 6)
        labels = torch.randint(0, 3, (2, 6, 6))
        labels[:, :2] = 255
        other = logits.clone()
        other[:, :, :2] = 50 * torch.randn(2, 3, 2, 6)  # garbage where ignored
        a, b = logits.clone().requires_grad_(True), other.clone().requires_grad_(True)
        va, vb = loss(a, labels), loss(b, labels)
        va.backward()
        vb.backward()
        assert torch.allclose(va, vb), tree
        assert torch.allclose(a.grad, b.grad), tree
        assert torch.all(a.grad[:, :, :2] == 0), tree


def test_mean_over_valid_elements_only():
    out = torch.arange(4.0).reshape(4, 1, 1, 1)
    valid = torch.tensor([True, False, True, False]).reshape(4, 1, 1, 1)
    assert valid_mean(out, valid, out) == 1.0  # (0 + 2) / 2
    assert valid_mean(out, torch.zeros_like(valid), out) == 0.0
    empty = torch.zeros(0, 1, 1, 1, requires_grad=True)
    value = valid_mean(empty, torch.ones(0, 1, 1, 1, dtype=torch.bool), empty)
    assert value == 0.0 and value.requires_grad


def test_box_areas_match_torchvision():
    torch.manual_seed(1)
    xy = torch.rand(20, 2) * 10
    pred = torch.cat([xy, xy + torch.rand(20, 2) * 5 + 0.1], dim=1)
    xy = torch.rand(20, 2) * 10
    target = torch.cat([xy, xy + torch.rand(20, 2) * 5 + 0.1], dim=1)
    (inter, union, enclose), valid = box_iou_areas(pred, target)
    assert inter.shape == union.shape == enclose.shape == valid.shape == (20, 1, 1, 1)
    iou = box_iou(pred, target).diagonal()
    assert torch.allclose((inter / union).flatten(), iou, atol=1e-6)
    assert torch.allclose((union + inter).flatten(), box_area(pred) + box_area(target), rtol=1e-5)
    lo = torch.min(pred[:, :2], target[:, :2])
    hi = torch.max(pred[:, 2:], target[:, 2:])
    assert torch.allclose(enclose.flatten(), (hi - lo).prod(dim=1), rtol=1e-5)
    assert torch.all(enclose >= union - 1e-4)
