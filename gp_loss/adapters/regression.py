"""``regression``: real-valued predictions against real-valued targets."""

from __future__ import annotations

import math
from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch

from gp_loss.adapters.base import Adapter, far_from, register_adapter
from gp_loss.core.baselines import get_baseline

Tensor = torch.Tensor

#: Losses over (y_hat, y, r) that must fail the LRP: blind to an input, or rewarding the wrong way
RESIDUAL_BAD_LOSSES: dict[str, str] = {
    "target-blind: square(y_hat)": "square(y_hat)",
    "prediction-blind: square(y)": "square(y)",
    "rewards under-prediction: r": "r",
    "constant-like: the residual's sign": "mul(r, inv(abs(r)))",
}


def regression(prediction: Tensor, target: Tensor, ignore_nan: bool) -> Tuple[List[Tensor], Tensor]:  # noqa: UP006
    """``y_hat`` = the prediction, ``y`` = the target and ``r`` = their difference ``y_hat - y``,
    as (N, D, 1, 1) or (N, C, H, W).

    Args:
        prediction: (N), (N, D) or (N, C, H, W) real values.
        target: the same number of values (reshaped to the prediction's shape).
        ignore_nan: a NaN target marks a missing value (the mask): it is left out of the loss,
            value and gradient alike.
    """
    if prediction.dim() == 1:
        prediction = prediction[:, None]
    target = target.reshape(prediction.shape).to(prediction.dtype)
    while prediction.dim() < 4:
        prediction = prediction.unsqueeze(-1)
        target = target.unsqueeze(-1)
    if ignore_nan:
        valid = ~torch.isnan(target)
    else:
        valid = torch.ones_like(target, dtype=torch.bool)
    target = torch.where(valid, target, torch.zeros_like(target))  # no data-dependent branch
    prediction = torch.where(valid, prediction, torch.zeros_like(prediction))
    return [prediction, target, prediction - target], valid


@register_adapter
class Regression(Adapter):
    """Regression: ``loss(prediction, target)``; ``y_hat`` the prediction, ``y`` the target and
    ``r`` the residual ``y_hat - y``, all real; NaN targets are missing values (``ignore_nan``,
    default on).

    The residual is an input of its own, as the box adapter gives areas rather than corners:
    random trees over ``y_hat`` and ``y`` alone almost never have their minimum at
    ``y_hat = y`` (measured on the diabetes example: 1 proxy training in 5,854 explored losses),
    while most even functions of ``r`` do.
    """

    name = "regression"
    inputs = ("y_hat", "y", "r")
    # a loss must depend on the prediction and the target: r depends on both
    required_inputs = (frozenset({"y_hat", "r"}), frozenset({"y", "r"}))
    ranges: ClassVar[dict] = {name: (-math.inf, math.inf) for name in ("y_hat", "y", "r")}
    symbols: ClassVar[dict] = {
        "y_hat": (r"\hat{y}", {"real": True}),
        "y": ("y", {"real": True}),
        "r": ("r", {"real": True}),
    }
    arguments = ("prediction", "target")
    defaults: ClassVar[dict] = {"ignore_nan": True}
    calibration: ClassVar[dict] = {
        "good": {
            name: get_baseline(name).tree for name in ("squared_error", "absolute_error", "pseudo_huber")
        },
        "bad": RESIDUAL_BAD_LOSSES,
    }
    words: ClassVar[dict] = {
        "y_hat": "the prediction",
        "y": "the target",
        "r": "the residual (prediction - target)",
    }
    function = staticmethod(regression)

    def ordering_probes(self, prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
        """None apply to real-valued targets: the shared protocol's head judges alone (no class ordering)."""
        return {}

    def far_start(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Every prediction 5 x (the targets' std + 1) above or below its target."""
        valid = ~torch.isnan(target) if self.options["ignore_nan"] else None
        return far_from(target, prediction.shape, valid)

    def example(self, generator: torch.Generator, spatial: bool) -> tuple[Tensor, Tensor]:
        shape = (2, 3, 4, 4) if spatial else (8, 3)
        return torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)

    def curve(self):
        def point(r: float) -> tuple[Tensor, Tensor]:
            return torch.tensor([[r]]), torch.tensor([[0.0]])

        return "residual (prediction - target)", torch.linspace(-3.0, 3.0, 121), point

    def dynamic_dims(self, spatial: bool) -> tuple[dict[int, str], dict[int, str]]:
        dims = {0: "batch", 1: "channels", 2: "height", 3: "width"} if spatial else {0: "batch", 1: "outputs"}
        return dims, dict(dims)

    def edge_cases(self, generator: torch.Generator, spatial: bool) -> dict[str, tuple[Tensor, Tensor]]:
        prediction, target = self.example(generator, spatial)
        cases = {
            "huge residuals (1e6)": (prediction * 1e6, target),
            "ties (prediction = target)": (target.clone(), target),
            "an empty batch": (prediction[:0], target[:0]),
        }
        if self.options["ignore_nan"]:
            cases["every target missing (NaN)"] = (prediction, torch.full_like(target, float("nan")))
        return cases
