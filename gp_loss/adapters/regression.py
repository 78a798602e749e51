"""``regression``: real-valued predictions against real-valued targets."""

from __future__ import annotations

import math
from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch

from gp_loss.adapters.base import Adapter, register_adapter
from gp_loss.baselines import get_baseline

Tensor = torch.Tensor


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
    if not bool(valid.all()):
        target = torch.where(valid, target, torch.zeros_like(target))
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
        "bad": {
            "target-blind: square(y_hat)": "square(y_hat)",
            "prediction-blind: square(y)": "square(y)",
            "rewards under-prediction: r": "r",
            "constant-like: the residual's sign": "mul(r, inv(abs(r)))",
        },
    }
    function = staticmethod(regression)
