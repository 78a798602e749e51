"""``heatmap``: predicted keypoint heatmaps against Gaussian targets, unlabelled keypoints left out."""

from __future__ import annotations

import math
from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch

from gp_loss.adapters.base import Adapter, far_from, register_adapter
from gp_loss.adapters.regression import RESIDUAL_BAD_LOSSES
from gp_loss.core.baselines import get_baseline

Tensor = torch.Tensor


def heatmap(prediction: Tensor, target: Tensor) -> Tuple[List[Tensor], Tensor]:  # noqa: UP006
    """``y_hat`` = the predicted heatmaps, ``y`` = the targets and ``r`` = ``y_hat - y``, all
    (N, K, H, W).

    Args:
        prediction: (N, K, H, W) raw heatmaps (unbounded reals).
        target: (N, K, H, W) Gaussian targets in [0, 1]; a keypoint without a label (weight 0:
            not annotated, or outside the crop) holds negative values (-1) in its whole map.

    Positions with a negative target are left out: they hold zeros in every input, detached
    from ``prediction``, so they change neither the loss value nor its gradient.
    """
    valid = target >= 0
    target = torch.where(valid, target, torch.zeros_like(target)).to(
        prediction.dtype
    )  # no data-dependent branch
    prediction = torch.where(valid, prediction, torch.zeros_like(prediction))
    return [prediction, target, prediction - target], valid


@register_adapter
class Heatmap(Adapter):
    """Pose heatmaps: ``loss(heatmaps, target_heatmaps)``; ``y_hat`` the prediction (any real),
    ``y`` the target in [0, 1] and ``r`` the residual; keypoints whose target is negative are
    left out.

    The residual is an input of its own for the reason the ``regression`` adapter gives one:
    random trees over ``y_hat`` and ``y`` alone almost never have their minimum at
    ``y_hat = y``, while most even functions of ``r`` do.
    """

    name = "heatmap"
    inputs = ("y_hat", "y", "r")
    required_inputs = (frozenset({"y_hat", "r"}), frozenset({"y", "r"}))
    # predicted heatmaps are raw network outputs: unbounded, so a safe primitive may meet any real
    ranges: ClassVar[dict] = {"y_hat": (-math.inf, math.inf), "y": (0.0, 1.0), "r": (-math.inf, math.inf)}
    symbols: ClassVar[dict] = {
        "y_hat": (r"\hat{y}", {"real": True}),
        "y": ("y", {"nonnegative": True}),
        "r": ("r", {"real": True}),
    }
    arguments = ("heatmaps", "target_heatmaps")
    calibration: ClassVar[dict] = {
        "good": {
            "heatmap_mse": get_baseline("heatmap_mse").tree,
            "heatmap_l1": get_baseline("heatmap_l1").tree,
            "target-weighted MSE (1 + y) r^2": "add(square(r), mul(y, square(r)))",
        },
        "bad": RESIDUAL_BAD_LOSSES,
    }
    words: ClassVar[dict] = {
        "y_hat": "the predicted heatmap",
        "y": "the target heatmap",
        "r": "the residual (prediction - target)",
    }
    function = staticmethod(heatmap)

    def ordering_probes(self, prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
        """None apply to heatmaps: the shared protocol's head judges alone (no class ordering)."""
        return {}

    def far_start(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Every labelled pixel 5 x (the targets' std + 1) above or below its target."""
        return far_from(target, prediction.shape, target >= 0)

    def example(self, generator: torch.Generator, spatial: bool) -> tuple[Tensor, Tensor]:
        prediction = torch.randn(2, 17, 8, 6, generator=generator)
        target = torch.rand(2, 17, 8, 6, generator=generator) ** 4
        target[0, 3] = -1.0  # a keypoint without a label
        return prediction, target

    def curve(self):
        def point(r: float) -> tuple[Tensor, Tensor]:  # one pixel whose target is 0.5
            return torch.full((1, 1, 1, 1), 0.5 + r), torch.full((1, 1, 1, 1), 0.5)

        return "residual at a pixel whose target is 0.5", torch.linspace(-1.0, 1.0, 101), point

    def dynamic_dims(self, spatial: bool) -> tuple[dict[int, str], dict[int, str]]:
        dims = {0: "batch", 1: "keypoints", 2: "height", 3: "width"}
        return dims, dict(dims)

    def edge_cases(self, generator: torch.Generator, spatial: bool) -> dict[str, tuple[Tensor, Tensor]]:
        prediction, target = self.example(generator, spatial)
        return {
            "huge predictions (+-1e4)": (1e4 * torch.sign(prediction), target),
            "ties (all predictions 0)": (torch.zeros_like(prediction), target),
            "every keypoint without a label": (prediction, torch.full_like(target, -1.0)),
            "an empty batch": (prediction[:0], target[:0]),
        }
