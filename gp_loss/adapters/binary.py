"""``sigmoid_binary``: per-pixel binary targets (Mask R-CNN masks) as two-class probabilities."""

from __future__ import annotations

import math
from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch

from gp_loss.adapters.base import Adapter, register_adapter
from gp_loss.adapters.probabilities import SoftmaxOneHot
from gp_loss.core.baselines import get_baseline

Tensor = torch.Tensor


def sigmoid_binary(logits: Tensor, targets: Tensor) -> Tuple[List[Tensor], Tensor]:  # noqa: UP006
    """``y_hat`` = (1 - sigmoid, sigmoid) of the logits and ``y`` = (1 - t, t), (N, 2, H, W).

    Args:
        logits: (N,), (N, H, W) or (N, 1, H, W) raw scores (a Mask R-CNN's mask logits of each
            positive RoI for its ground-truth class are (N, M, M)).
        targets: the same number of values in [0, 1]: binary masks, or soft ones where the
            ground truth was resampled (torchvision's RoIAlign-projected masks).

    Every classification tree applies unchanged: the cross-entropy tree gives
    ``F.binary_cross_entropy_with_logits(logits, targets) / 2``. The background probability is
    computed as sigmoid(-logits), not 1 - sigmoid(logits), so it keeps its precision where the
    logits are large.
    """
    x = logits
    if x.dim() == 4:
        x = x[:, 0]
    if x.dim() == 1:
        x = x[:, None, None]
    t = targets.reshape(x.shape).to(x.dtype)[:, None]
    x = x[:, None]
    y_hat = torch.cat([torch.sigmoid(-x), torch.sigmoid(x)], dim=1)
    y = torch.cat([1.0 - t, t], dim=1)
    valid = torch.ones(x.shape, dtype=torch.bool, device=x.device)
    return [y_hat, y], valid


@register_adapter
class SigmoidBinary(Adapter):
    """Binary masks: ``loss(mask_logits, mask_targets)``; ``y_hat`` the background and
    foreground probabilities, ``y`` the target's, both two channels."""

    name = "sigmoid_binary"
    inputs = ("y_hat", "y")
    required_inputs = (frozenset({"y_hat"}), frozenset({"y"}))
    ranges = SoftmaxOneHot.ranges
    symbols = SoftmaxOneHot.symbols
    arguments = ("mask_logits", "mask_targets")
    calibration: ClassVar[dict] = {
        "good": {
            "bce": get_baseline("bce").tree,
            "binary_dice": get_baseline("binary_dice").tree,
            **{name: get_baseline(name).tree for name in ("soft_iou", "focal", "mse")},
        },
        "bad": SoftmaxOneHot.calibration["bad"],
    }
    words: ClassVar[dict] = {"y_hat": "the predicted probability", "y": "the target's"}
    function = staticmethod(sigmoid_binary)

    def ordering_probes(self, prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
        """None apply to masks and binary labels: the shared protocol's head judges alone (no class ordering)."""
        return {}

    def example(self, generator: torch.Generator, spatial: bool) -> tuple[Tensor, Tensor]:
        shape = (5, 14, 14) if spatial else (12,)
        logits = 3 * torch.randn(shape, generator=generator)
        return logits, (torch.rand(shape, generator=generator) > 0.5).float()

    def curve(self):
        def point(p: float) -> tuple[Tensor, Tensor]:  # one foreground pixel
            return torch.tensor([math.log(p / (1 - p))]), torch.tensor([1.0])

        return "predicted probability at a foreground pixel", torch.linspace(0.01, 0.99, 99), point

    def dynamic_dims(self, spatial: bool) -> tuple[dict[int, str], dict[int, str]]:
        dims = {0: "batch", 1: "height", 2: "width"} if spatial else {0: "batch"}
        return dims, dict(dims)

    def edge_cases(self, generator: torch.Generator, spatial: bool) -> dict[str, tuple[Tensor, Tensor]]:
        logits, targets = self.example(generator, spatial)
        return {
            "huge logits (+-1e4)": (1e4 * torch.sign(logits), targets),
            "ties (all logits 0)": (torch.zeros_like(logits), targets),
            "empty masks (all targets 0)": (logits, torch.zeros_like(targets)),
            "full masks (all targets 1)": (logits, torch.ones_like(targets)),
            "an empty batch": (logits[:0], targets[:0]),
        }
