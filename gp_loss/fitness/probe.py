"""Probe-batch computations shared by the validity check, GEC and LRP."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from gp_loss.core.errors import GpLossError
from gp_loss.trees.loss_module import TreeLoss


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
    (docs/architecture.md section 3), a norm-only key would make ``-L`` "equivalent" to a good ``L`` and hand it
    L's fitness. The sign tells them apart and is identical for truly equivalent losses.
    """
    flat = grad.detach().double().reshape(grad.shape[0], -1)  # predictions may be (B,)
    direction = torch.randn(flat.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    signs = torch.sign((flat * direction).sum(dim=1)).tolist()
    norms = flat.norm(dim=1).tolist()
    marks = {1.0: "+", -1.0: "-", 0.0: ""}
    return ",".join(f"{marks[s]}{v:.{digits - 1}e}" for s, v in zip(signs, norms))


@functools.lru_cache(maxsize=64)
def _probe_batches(task) -> Mapping:
    batches = task.probe_batches()
    missing = sorted({s.name for s in task.slots} - set(batches))
    if missing:
        raise GpLossError(f"task {task.name!r}: probe_batches() gives no batch for slot(s) {missing}")
    return batches


def probe_batch(task, slot: str):
    """The task's probe batch for ``slot`` (:meth:`Task.probe_batches`, built once per task)."""
    return _probe_batches(task)[slot]


@functools.lru_cache(maxsize=64)
def _probe_heads(task) -> Mapping:
    return task.probe_heads()


def probe_head(task, slot: str):
    """The task's head-protocol probe of ``slot`` or ``None`` (:meth:`Task.probe_heads`, built
    once per task object)."""
    return _probe_heads(task).get(slot)


def check_probes(task) -> None:
    """Build the task's probe batches and run each slot's adapter on its batch once, so that a
    model, data or adapter that do not fit fail as one :class:`GpLossError` naming the slot and
    the shapes, before a search writes anything (instead of torch's bare error in the first
    candidate, with a half-started run left behind)."""
    from gp_loss.adapters import get_adapter

    try:
        batches = _probe_batches(task)
    except GpLossError:
        raise
    except Exception as err:  # the task's model on its own data: shapes, dtypes, devices
        raise GpLossError(
            f"task {task.name!r}: its model could not run on its probe batch: {_first_line(err)}"
        ) from err
    for slot in task.slots:
        batch = batches[slot.name]
        shapes = (
            f"predictions {tuple(batch.predictions.shape)} {str(batch.predictions.dtype).replace('torch.', '')}, "
            f"targets {tuple(batch.targets.shape)} {str(batch.targets.dtype).replace('torch.', '')}"
        )
        adapter = get_adapter(slot.adapter, slot.adapter_options)
        try:
            problem = adapter.check(batch.predictions, batch.targets)
            if problem is None:
                adapter.forward(batch.predictions, batch.targets)
        except GpLossError:
            raise
        except Exception as err:
            problem = _first_line(err)
        if problem is not None:
            raise GpLossError(
                f"task {task.name!r}, slot {slot.name!r}: adapter {slot.adapter!r} cannot read the "
                f"model's output ({shapes}): {problem}"
            )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
