"""``softmax_onehot``: class scores as softmax probabilities against a one-hot target."""

from __future__ import annotations

import math
from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch

from gp_loss.adapters.base import Adapter, register_adapter
from gp_loss.core.baselines import get_baseline

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
    # one-hot by comparison with the class indices: F.one_hot would fix the class count when
    # torch.export traces the loss
    classes = torch.arange(logits.shape[1], device=logits.device).view(1, -1, 1, 1)
    y = (safe[:, None] == classes).to(logits.dtype)
    weight = valid.to(logits.dtype)  # no data-dependent branch: torch.export traces it
    return [torch.softmax(logits, dim=1) * weight, y * weight], valid


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
    words: ClassVar[dict] = {"y_hat": "the predicted class probability", "y": "the one-hot target"}
    function = staticmethod(softmax_onehot)

    def ordering_probes(self, prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Logits of margin 10 on the true class (``correct``), on the next class (``wrong``) and
        on the most frequent label (``majority``); all zeros (``uninformed``). Ignored positions
        hold class 0: the loss leaves them out whatever they hold."""
        classes, margin = prediction.shape[1], 10.0
        valid = (target != int(self.options["ignore_index"])) & (target >= 0) & (target < classes)
        safe = torch.where(valid, target, torch.zeros_like(target)).long()
        counts = torch.bincount(safe[valid], minlength=classes)
        majority = torch.full_like(safe, int(counts.argmax()))

        def confident(labels: Tensor) -> Tensor:
            hot = torch.nn.functional.one_hot(labels, classes).movedim(-1, 1)
            return margin * hot.to(prediction.dtype)

        return {
            "correct": confident(safe),
            "uninformed": torch.zeros_like(prediction),
            "wrong": confident((safe + 1) % classes),
            "majority": confident(majority),
        }

    def check(self, prediction: Tensor, target: Tensor) -> str | None:
        """Logits (N, C[, H, W]) against integer labels (N[, H, W]) in [0, C) or ``ignore_index``
        (a label >= C would silently get an all-zero one-hot target)."""
        if prediction.dim() not in (2, 4) or target.shape != (prediction.shape[0], *prediction.shape[2:]):
            return "expects logits (N, C) or (N, C, H, W) and labels (N) or (N, H, W)"
        if target.is_floating_point():
            return "expects integer class labels"
        labels = target[target != int(self.options["ignore_index"])]
        classes = prediction.shape[1]
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
            return f"labels run from {int(labels.min())} to {int(labels.max())}, but the logits have {classes} classes"
        return None

    def example(self, generator: torch.Generator, spatial: bool) -> tuple[Tensor, Tensor]:
        shape = (4, 5, 6, 6) if spatial else (8, 5)
        logits = 3 * torch.randn(shape, generator=generator)
        labels = torch.randint(0, 5, (shape[0], *shape[2:]), generator=generator)
        labels.view(-1)[::7] = int(self.options["ignore_index"])  # some positions ignored
        return logits, labels

    def curve(self):
        def point(p: float) -> tuple[Tensor, Tensor]:  # two classes, the first is the truth
            return torch.tensor([[math.log(p), math.log(1 - p)]]), torch.tensor([0])

        return "predicted probability of the true class", torch.linspace(0.01, 0.99, 99), point

    def dynamic_dims(self, spatial: bool) -> tuple[dict[int, str], dict[int, str]]:
        if spatial:
            return {0: "batch", 1: "classes", 2: "height", 3: "width"}, {0: "batch", 1: "height", 2: "width"}
        return {0: "batch", 1: "classes"}, {0: "batch"}

    def edge_cases(self, generator: torch.Generator, spatial: bool) -> dict[str, tuple[Tensor, Tensor]]:
        logits, labels = self.example(generator, spatial)
        ignored = torch.full_like(labels, int(self.options["ignore_index"]))
        wrong = (labels.clamp(0, 4) + 1) % 5
        confident = 30 * torch.nn.functional.one_hot(wrong, 5).movedim(-1, 1).float()
        return {
            "huge logits (+-1e4)": (1e4 * torch.sign(logits), labels),
            "confident mistakes (30 on a wrong class)": (confident, labels.clamp(0, 4)),
            "ties (all logits 0)": (torch.zeros_like(logits), labels),
            "every position ignored": (logits, ignored),
            "an empty batch": (logits[:0], labels[:0]),
        }
