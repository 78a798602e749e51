"""The Loss-Rejection Protocols: how much does optimising with a candidate loss improve the metric?

Two protocols judge a candidate by the gain g(L) = mean_b [xi(y*_b, y_b) - xi(y_hat_b, y_b)]:

- ``paper`` (AutoLoss-Zero): the probe *predictions* themselves are optimised, each sample on
  its own (:func:`free_prediction_gain`). Cheap, but it rewards any loss whose gradient happens
  to favour the target on free predictions: losses that are concave in the wrong classes'
  probabilities (``sqrt(y_hat + y)``, ``tanh(y_hat + y)``) or that follow class frequencies pass
  it, then collapse a real network onto one class.
- ``shared`` (default): first an ordering check on the probes the slot's adapter declares
  (:func:`misorders`; a slot whose adapter declares none is judged with ``paper``), then,
  where the task gives probe features, a fresh head
  trained on them (:func:`trainable_head_gain`): all samples share its weights, as they share a
  network's in training, so a loss must move a *shared* model toward every target at once.
  Chosen over the paper's protocol by ``bench lrp --against-training`` (docs/BENCHMARKS.md).

Gains are ``None`` when the loss turns non-finite on the way (the candidate is invalid).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from gp_loss.adapters.base import ORDERED_PAIRS

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LrpSettings:
    """One slot's protocol settings: Adam ``steps`` at learning rate ``lr``; reject below ``eta``;
    ``hidden`` units in the shared protocol's two-layer head (0: a linear head); reject a loss
    whose probe gradient is more than ``max_grad_ratio`` times the slot's baseline's (``None``:
    no such check)."""

    protocol: str
    steps: int
    lr: float
    eta: float
    hidden: int = 0
    max_grad_ratio: float | None = None


def _optimise(loss: LossFn, params: list[torch.Tensor], predict, targets, steps: int, lr: float) -> bool:
    """Adam on ``params`` minimising ``loss(predict(), targets)``; False at a non-finite value."""
    optimizer = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        value = loss(predict(), targets)
        if not torch.isfinite(value):
            return False
        if not value.requires_grad:
            return True  # the loss ignores the prediction: nothing to optimise, gain 0
        value.backward()
        if not all(bool(torch.isfinite(p.grad).all()) for p in params if p.grad is not None):
            return False
        optimizer.step()
    return True


def free_prediction_gain(
    loss: LossFn, predictions: torch.Tensor, targets: torch.Tensor, metric: MetricFn, steps: int, lr: float
) -> float | None:
    """The paper's protocol: optimise a copy of the probe predictions directly."""
    pred = predictions.detach().clone().requires_grad_(True)
    if not _optimise(loss, [pred], lambda: pred, targets, steps, lr):
        return None
    with torch.no_grad():
        return float((metric(pred.detach(), targets) - metric(predictions, targets)).mean())


def normalise(features: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """Features at unit scale: z-scored per channel (over samples and positions), or divided by
    one global standard deviation.

    Features of a randomly initialised network come at arbitrary scales (std 0.005 across
    det_coco's box-head features: unscaled, no loss moves a head off them in K steps). The
    global scale keeps what the channels share across samples, as a ReLU network's features
    do; that shared component is what lets a confidence-rewarding loss collapse every sample
    onto one class, the failure the protocol must reproduce. Where the shared component
    swamps the differences between samples (det_coco's box head), z-scoring is needed for
    any loss to learn; each task says which (:class:`tasks.base.HeadProbe`).
    """
    if not per_channel:
        return features / (features.std() + 1e-12)
    dims = [0, *range(2, features.dim())]
    mean = features.mean(dim=dims, keepdim=True)
    std = features.std(dim=dims, keepdim=True)
    return (features - mean) / (std + 1e-6)


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    """``torch.nn.Linear``'s initialisation (uniform in +-1/sqrt(fan_in)), from ``generator``."""
    bound = 1.0 / math.sqrt(fan_in)
    return ((torch.rand(shape, generator=generator) * 2 - 1) * bound).requires_grad_(True)


def trainable_head_gain(
    loss: LossFn,
    features: torch.Tensor,
    targets: torch.Tensor,
    outputs: int,
    metric: MetricFn,
    steps: int,
    lr: float,
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    hidden: int = 0,
    per_channel: bool = True,
    seed: int = 0,
) -> float | None:
    """The shared-weights protocol: train a fresh, seeded head on fixed, normalised features.

    The head is linear, or with ``hidden`` > 0 two layers with a ReLU between (1x1
    convolutions on spatial features), initialised as ``torch.nn.Linear`` is, from ``seed``,
    so every candidate starts from the same predictions. See :func:`normalise` for
    ``per_channel``.
    """
    x = normalise(features.detach().float(), per_channel)
    generator = torch.Generator().manual_seed(seed)
    sizes = [x.shape[1], hidden, outputs] if hidden > 0 else [x.shape[1], outputs]
    layers = [
        (_uniform((cout, cin), cin, generator), _uniform((cout,), cin, generator))
        for cin, cout in itertools.pairwise(sizes)
    ]
    extra = (1,) * (x.dim() - 2)

    def predict() -> torch.Tensor:
        out = x
        for i, (weight, bias) in enumerate(layers):
            if i:
                out = torch.relu(out)
            out = torch.einsum("bf...,of->bo...", out, weight) + bias.view((1, -1, *extra))
        return decode(out) if decode is not None else out

    with torch.no_grad():
        start = predict()
    params = [p for layer in layers for p in layer]
    if not _optimise(loss, params, predict, targets, steps, lr):
        return None
    with torch.no_grad():
        return float((metric(predict(), targets) - metric(start, targets)).mean())


def misorders(loss: LossFn, probes: Mapping[str, torch.Tensor], targets: torch.Tensor) -> bool | None:
    """Whether a loss ranks the adapter's ordering probes wrongly (``None``: a non-finite value).

    A convergence-property check in the spirit of CSE-Autoloss. ``probes`` are predictions
    named as in :data:`gp_loss.adapters.base.ORDERING` (:meth:`Adapter.ordering_probes`): the
    loss must cost less on the first of each pair in :data:`ORDERED_PAIRS` than on the second.
    For class logits: least on a confident correct prediction; less on an uninformed one than
    on a confident mistake; less on the truth than on the majority class predicted everywhere.
    Losses that are concave in the wrong classes' probabilities (``sqrt(y_hat + y)``,
    ``tanh(y_hat + y)``) prefer a confident mistake to an uninformed guess, and losses that
    follow class frequencies prefer the majority class: either lets a network collapse onto one
    class and stay there once its softmax saturates.
    """
    with torch.no_grad():
        cost = {name: loss(prediction, targets) for name, prediction in probes.items()}
    if cost and not bool(torch.isfinite(torch.stack(list(cost.values()))).all()):
        return None
    return any(bool(cost[a] >= cost[b]) for a, b in ORDERED_PAIRS if a in cost and b in cost)
