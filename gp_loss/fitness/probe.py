"""Probe-batch computations shared by the validity check, GEC and LRP."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from gp_loss.module import TreeLoss


@dataclass
class ProbeGradient:
    """Loss value and gradient w.r.t. the raw probe predictions, for one slot."""

    value: float
    grad: torch.Tensor

    @property
    def finite(self) -> bool:
        """Value and gradient are finite."""
        return bool(torch.isfinite(torch.tensor(self.value)) and torch.isfinite(self.grad).all())


def probe_gradient(loss: TreeLoss, predictions: torch.Tensor, targets: torch.Tensor) -> ProbeGradient:
    """Evaluate ``loss`` at the probe predictions and differentiate w.r.t. them (logits/boxes)."""
    pred = predictions.detach().clone().requires_grad_(True)
    value = loss(pred, targets)
    if value.requires_grad:
        (grad,) = torch.autograd.grad(value, pred)
    else:  # the tree does not depend on the prediction at all
        grad = torch.zeros_like(pred)
    return ProbeGradient(float(value.detach()), grad)


def gradient_fingerprint(grad: torch.Tensor, digits: int = 2) -> str:
    """Per-sample gradient norms ||dL/dy_hat_b||_2 rounded to ``digits`` significant digits,
    each with the sign of the gradient's projection on a fixed random direction.

    Two losses with the same fingerprint train the same way (Gradient-Equivalence-Check). The
    paper's key is the norms alone; because our GEC runs *before* the Loss-Rejection Protocol
    (DESIGN section 3), a norm-only key would make ``-L`` "equivalent" to a good ``L`` and hand it
    L's fitness. The sign tells them apart and is identical for truly equivalent losses.
    """
    flat = grad.detach().double().flatten(1)
    direction = torch.randn(flat.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    signs = torch.sign((flat * direction).sum(dim=1)).tolist()
    norms = flat.norm(dim=1).tolist()
    marks = {1.0: "+", -1.0: "-", 0.0: ""}
    return ",".join(f"{marks[s]}{v:.{digits - 1}e}" for s, v in zip(signs, norms))


@functools.lru_cache(maxsize=64)
def _cached_probe(task, slot: str):
    return task.probe_batch(slot)


def probe_batch(task, slot: str):
    """The task's probe batch for ``slot``, built once per task object."""
    return _cached_probe(task, slot)


@functools.lru_cache(maxsize=64)
def _cached_head(task, slot: str):
    return task.probe_head(slot)


def probe_head(task, slot: str):
    """The task's head-protocol probe of ``slot`` (or ``None``), built once per task object."""
    return _cached_head(task, slot)
