"""The box-regression losses of mmdetection's Faster/Mask R-CNN IoU configs, as those configs set them.

mmdetection's ``faster-rcnn_r50_fpn_{iou,giou,ciou}_1x_coco`` configs regress *decoded* boxes
(``reg_decoded_bbox=True``) with ``IoULoss`` (``loss_weight`` 10, its default ``mode='log'``:
-log IoU), ``GIoULoss`` (``loss_weight`` 10) and ``CIoULoss`` (``loss_weight`` 12). The bbox
head sums the loss over the positive RoIs and divides by the number of *all* sampled RoIs
(``avg_factor = bbox_targets.size(0)``), as torchvision's stock smooth-L1 does. So these losses
take the number of sampled RoIs besides the boxes: :class:`SampledRoiLoss`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: mmdetection's ``IoULoss`` clamps the IoU at this before the log
IOU_EPS = 1e-6
#: mmdetection's ``GIoULoss`` / ``CIoULoss`` epsilon (torchvision's box losses use the same)
BOX_EPS = 1e-7


class SampledRoiLoss(nn.Module):
    """A box loss that the RCNN head calls as ``loss(pred_boxes, target_boxes, sampled=R)``:
    the positive RoIs' xyxy boxes and the number of RoIs sampled in the batch (positives and
    negatives), which it averages over."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def per_box(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The unweighted loss of each positive box, (P,)."""
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor, sampled: int) -> torch.Tensor:
        if pred.shape[0] == 0:
            return pred.sum() * 0.0
        return self.weight * self.per_box(pred, target).sum() / max(int(sampled), 1)

    def extra_repr(self) -> str:
        return f"weight={self.weight:g}, averaged over all sampled RoIs"


def aligned_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """IoU of each box with its own target (not all pairs), (P,)."""
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area_p = (pred[:, 2:] - pred[:, :2]).prod(dim=1)
    area_t = (target[:, 2:] - target[:, :2]).prod(dim=1)
    return inter / (area_p + area_t - inter + eps)


class IoULoss(SampledRoiLoss):
    """mmdetection's ``IoULoss`` at its defaults (``mode='log'``): -log(max(IoU, 1e-6))."""

    def __init__(self, weight: float = 10.0) -> None:
        super().__init__(weight)

    def per_box(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -aligned_iou(pred, target, BOX_EPS).clamp(min=IOU_EPS).log()


class GIoULoss(SampledRoiLoss):
    """mmdetection's ``GIoULoss``: 1 - GIoU (torchvision's ``generalized_box_iou_loss``)."""

    def __init__(self, weight: float = 10.0) -> None:
        super().__init__(weight)

    def per_box(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import generalized_box_iou_loss  # lazy: torchvision.ops costs a second to import

        return generalized_box_iou_loss(pred, target, reduction="none", eps=BOX_EPS)


class CIoULoss(SampledRoiLoss):
    """mmdetection's ``CIoULoss``: 1 - (IoU - rho^2 / c^2 - alpha v), with the aspect-ratio
    term v = 4 / pi^2 (atan(w_t / h_t) - atan(w_p / h_p))^2 weighted by alpha = v / (1 - IoU + v)
    only where IoU > 0.5 (alpha without gradient), and the CIoU clamped to [-1, 1]. Where every
    IoU exceeds 0.5 it equals torchvision's ``complete_box_iou_loss``; elsewhere it is the DIoU
    loss."""

    def __init__(self, weight: float = 12.0) -> None:
        super().__init__(weight)

    def per_box(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        iou = aligned_iou(pred, target, BOX_EPS)
        enclose = torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])
        c2 = (enclose**2).sum(dim=1) + BOX_EPS
        centre_p = (pred[:, :2] + pred[:, 2:]) / 2
        centre_t = (target[:, :2] + target[:, 2:]) / 2
        rho2 = ((centre_t - centre_p) ** 2).sum(dim=1)
        w_p, h_p = pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1] + BOX_EPS
        w_t, h_t = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1] + BOX_EPS
        v = (4 / math.pi**2) * (torch.atan(w_t / h_t) - torch.atan(w_p / h_p)) ** 2
        with torch.no_grad():
            alpha = (iou > 0.5).to(v.dtype) * v / (1 - iou + v)
        ciou = (iou - (rho2 / c2 + alpha * v)).clamp(min=-1.0, max=1.0)
        return 1 - ciou


#: the reference box losses by name, at mmdetection's published weights
BOX_LOSSES: dict[str, type[SampledRoiLoss]] = {"iou": IoULoss, "giou": GIoULoss, "ciou": CIoULoss}
