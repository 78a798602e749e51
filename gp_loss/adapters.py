"""Input adapters: turn a torch loss's usual arguments into a tree's inputs.

Each adapter returns the tree inputs (in the order of ``ADAPTER_INPUTS``) and a boolean mask of
valid positions that broadcasts against them; :func:`valid_mean` reduces a tree's output to the
scalar loss. Everything here is TorchScript-compatible and depends on torch alone, because the
standalone export copies this source verbatim.
"""

from __future__ import annotations

from typing import List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def softmax_onehot(logits: Tensor, labels: Tensor, ignore_index: int) -> Tuple[List[Tensor], Tensor]:  # noqa: UP006
    """``y_hat`` = softmax probabilities and ``y`` = one-hot target, both (N, C, H, W).

    Args:
        logits: (N, C) or (N, C, H, W) raw scores.
        labels: (N) or (N, H, W) integer class indices; ``ignore_index`` marks ignored positions.
        ignore_index: label value excluded from the loss.

    Ignored positions hold zeros in both inputs, detached from ``logits``, so they change neither
    the loss value nor its gradient.
    """
    if logits.dim() == 2:
        logits = logits[:, :, None, None]
        labels = labels[:, None, None]
    valid = (labels != ignore_index)[:, None]
    safe = torch.where(valid[:, 0], labels, torch.zeros_like(labels)).long()
    y = F.one_hot(safe, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
    y_hat = torch.softmax(logits, dim=1)
    if not bool(valid.all()):
        weight = valid.to(logits.dtype)
        y = y * weight
        y_hat = y_hat * weight
    return [y_hat, y], valid


def box_iou_areas(pred_boxes: Tensor, target_boxes: Tensor) -> Tuple[List[Tensor], Tensor]:  # noqa: UP006
    """Areas of intersection, union and smallest enclosing box of paired xyxy boxes.

    Args:
        pred_boxes: (R, 4) predicted boxes, (x1, y1, x2, y2).
        target_boxes: (R, 4) ground-truth boxes.

    Returns ``[inter, union, enclose]``, each (R, 1, 1, 1), and an all-true mask.
    """
    pw = (pred_boxes[:, 2] - pred_boxes[:, 0]).clamp(min=0)
    ph = (pred_boxes[:, 3] - pred_boxes[:, 1]).clamp(min=0)
    tw = (target_boxes[:, 2] - target_boxes[:, 0]).clamp(min=0)
    th = (target_boxes[:, 3] - target_boxes[:, 1]).clamp(min=0)
    lt = torch.max(pred_boxes[:, :2], target_boxes[:, :2])
    rb = torch.min(pred_boxes[:, 2:], target_boxes[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = pw * ph + tw * th - inter
    enclose_wh = (
        torch.max(pred_boxes[:, 2:], target_boxes[:, 2:]) - torch.min(pred_boxes[:, :2], target_boxes[:, :2])
    ).clamp(min=0)
    enclose = enclose_wh[:, 0] * enclose_wh[:, 1]
    shape = [pred_boxes.shape[0], 1, 1, 1]
    valid = torch.ones(shape, dtype=torch.bool, device=pred_boxes.device)
    return [inter.reshape(shape), union.reshape(shape), enclose.reshape(shape)], valid


def valid_mean(out: Tensor, valid: Tensor, like: Tensor) -> Tensor:
    """Mean of a tree's output over all valid elements of the input shape ``like``.

    The output may be smaller than the inputs after aggregations; it is broadcast back first.
    With nothing valid (an empty batch, everything ignored) the loss is 0 and still has a graph.
    """
    full = out.expand(like.shape)
    mask = valid.expand(like.shape)
    if full.numel() == 0:
        return out.sum() * 0.0
    if bool(mask.all()):
        return out.mean()  # broadcasting replicates uniformly: same mean as the full tensor
    total = torch.where(mask, full, torch.zeros_like(full)).sum()
    return total / mask.sum().clamp(min=1).to(full.dtype)
