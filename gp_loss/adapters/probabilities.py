"""``softmax_onehot``: class scores as softmax probabilities against a one-hot target."""

from __future__ import annotations

from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch
import torch.nn.functional as F

from gp_loss.adapters.base import Adapter, register_adapter
from gp_loss.baselines import get_baseline

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


@register_adapter
class SoftmaxOneHot(Adapter):
    """Classification and segmentation: ``loss(logits, labels)``; ``y_hat`` are softmax
    probabilities, ``y`` the one-hot target; labels equal to ``ignore_index`` are left out."""

    name = "softmax_onehot"
    inputs = ("y_hat", "y")
    required_inputs = (frozenset({"y_hat"}), frozenset({"y"}))
    # probabilities are positive; a one-hot target can be 0 (where ``inv`` gives 0, not inf)
    ranges: ClassVar[dict] = {"y_hat": (0.0, 1.0), "y": (0.0, 1.0)}
    symbols: ClassVar[dict] = {"y_hat": (r"\hat{y}", {"positive": True}), "y": ("y", {"nonnegative": True})}
    arguments = ("logits", "labels")
    defaults: ClassVar[dict] = {"ignore_index": 255}
    calibration: ClassVar[dict] = {
        "good": {
            name: get_baseline(name).tree for name in ("cross_entropy", "soft_iou", "dice", "focal", "mse")
        },
        "bad": {
            "constant-like (mean_c of probabilities is 1/C)": "add(mean_c(y_hat), mean_c(y))",
            "target-blind: square(y_hat)": "square(y_hat)",
            "target-blind: negative entropy": "mul(y_hat, log(y_hat))",
            "prediction-blind: square(y)": "square(y)",
        },
        # pass the paper's protocol yet collapse a network onto one class (measured: issue 18)
        "collapsing": {
            "collapses onto one class: tanh(y_hat + y)": "tanh(add(y_hat, y))",
            "collapses onto one class: sqrt(y_hat + y)": "sqrt(add(y_hat, y))",
            "follows class frequencies": "mul(neg(add(y_hat, y_hat)), mean_nhw(tanh(y)))",
        },
    }
    function = staticmethod(softmax_onehot)
