"""The Loss-Rejection Protocol stage (docs/architecture.md section 3, stage 4); the protocols' computations
live in :mod:`gp_loss.fitness.rejection`."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import torch

from gp_loss.adapters import get_adapter
from gp_loss.core.errors import GpLossError
from gp_loss.core.events import INVALID, REJECTED
from gp_loss.core.settings import PROTOCOLS, SpaceLimits
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.probe import probe_batch, probe_gradient, probe_head
from gp_loss.fitness.rejection import LrpSettings, free_prediction_gain, misorders, trainable_head_gain
from gp_loss.fitness.stage import Stage, slot_losses
from gp_loss.trees.loss_module import TreeLoss

#: Per-slot LRP verdicts kept by one :class:`LossRejection` (the oldest go first).
VERDICT_CACHE = 100_000


class LossRejection(Stage):
    """Loss-Rejection Protocol: optimise with the candidate for K steps on the probe samples.

    g(L) = mean_b [xi(y*_b, y_b) - xi(y_hat_b, y_b)] with xi the slot's per-sample metric;
    rejected if g < eta in any slot; ``invalid`` if the loss turns non-finite on the way. The
    protocols (:mod:`gp_loss.fitness.rejection`): ``shared`` (default) first rejects a
    classification loss that ranks a confident mistake below an uninformed guess and, where
    the task sets ``max_grad_ratio``, a loss whose gradient dwarfs the slot's baseline's; then it
    trains a shared head on the task's probe features (free predictions where the task gives none);
    ``paper`` optimises the free probe predictions, as AutoLoss-Zero does.

    Args:
        inner: the next stage (usually :class:`ProxyTraining`).
        protocol: ``shared`` (default) or ``paper``.
        steps: K, optimisation steps (``None``: the task's default for the protocol).
        lr: Adam learning rate (``None``: the task's default).
        eta: rejection threshold for every slot, or ``{slot: eta}`` (``None``: the task's default).
    """

    name = "lrp"

    def __init__(
        self,
        inner,
        task=None,
        *,
        protocol: str | None = None,
        steps: int | None = None,
        lr: float | None = None,
        eta: float | Mapping[str, float] | None = None,
        enabled: bool = True,
        space: SpaceLimits | None = None,
    ) -> None:
        super().__init__(inner, task, enabled=enabled, space=space)
        self.protocol = protocol or "shared"
        if self.protocol not in PROTOCOLS:
            raise GpLossError(f"unknown LRP protocol {self.protocol!r}; known: {', '.join(PROTOCOLS)}")
        self.overrides = {"steps": steps, "lr": lr, "eta": eta}
        self._reference_norms: dict[str, float] = {}
        self._settings: dict[str, LrpSettings] = {}
        self._verdicts: dict[tuple[str, str], tuple[str, float | None, str | None]] = {}
        self._ordering: dict[str, dict[str, torch.Tensor] | None] = {}
        self._far: dict[str, tuple[torch.Tensor, float | None] | None] = {}

    def settings(self, slot: str) -> LrpSettings:
        """The protocol, K, lr and eta that ``slot`` is judged with."""
        if slot not in self._settings:
            self._settings[slot] = self._resolve(slot)
        return self._settings[slot]

    def ordering_probes(self, slot: str) -> dict[str, torch.Tensor] | None:
        """The slot's adapter's ordering probes on its probe batch (``None``: it declares none)."""
        if slot not in self._ordering:
            declared = self.task.slot(slot)
            batch = probe_batch(self.task, slot)
            adapter = get_adapter(declared.adapter, declared.adapter_options)
            self._ordering[slot] = adapter.ordering_probes(batch.predictions, batch.targets)
        return self._ordering[slot]

    def far_start(self, slot: str) -> tuple[torch.Tensor, float | None] | None:
        """The slot's adapter's far-off start on its probe batch, with the gradient norm of the
        slot's first tree baseline at the probe's own start (``None`` where the task has no tree
        baseline; the whole: ``None`` where the adapter gives no far-off start)."""
        if slot not in self._far:
            declared = self.task.slot(slot)
            batch = probe_batch(self.task, slot)
            start = get_adapter(declared.adapter, declared.adapter_options).far_start(
                batch.predictions, batch.targets
            )
            self._far[slot] = None if start is None else (start, self._reference_norm(slot))
        return self._far[slot]

    def far_problem(self, loss: TreeLoss, slot: str) -> tuple[str, str] | None:
        """``(outcome, reason)`` if ``loss`` loses its pull from a far-off start: non-finite
        there (``invalid``), or a gradient that vanishes (under 1e-6 x the reference baseline's
        at the probe's start, or the loss's own without one) or does not point back towards the
        targets (cosine with the start's offset under 0.1; ``rejected``). A loss that saturates
        there (a tanh of a growing error) would never train a network that starts far from its
        targets."""
        far = self.far_start(slot)
        if far is None:
            return None
        start, reference = far
        batch = probe_batch(self.task, slot)
        targets = batch.targets
        if reference is None:
            reference = float(probe_gradient(loss, batch.predictions, targets).grad.norm())
        probe = probe_gradient(loss, start, targets)
        if not probe.finite:
            return INVALID, f"non-finite loss from a far-off start ({slot})"
        offset = (start - targets.reshape(start.shape).nan_to_num()).flatten().double()
        grad = probe.grad.flatten().double()
        norm = float(grad.norm())
        cosine = float(grad @ offset) / max(norm * float(offset.norm()), 1e-300)
        if norm < 1e-6 * reference or cosine < 0.1:
            return (
                REJECTED,
                f"{slot}: no pull back from a far-off start (gradient {norm:.2g}, cosine {cosine:+.2f})",
            )
        return None

    def _resolve(self, slot: str) -> LrpSettings:
        protocol = self.protocol
        if protocol == "shared" and self.ordering_probes(slot) is None:
            protocol = "paper"
            _notice_once(self.task, slot)
        values = dict(_task_lrp_defaults(self.task, protocol))
        values.update({k: v for k, v in self.overrides.items() if v is not None})
        eta = values["eta"]
        eta = eta[slot] if isinstance(eta, Mapping) else eta
        ratio = values.get("max_grad_ratio")
        return LrpSettings(
            protocol,
            int(values["steps"]),
            float(values["lr"]),
            float(eta),
            int(values.get("hidden", 0)),
            None if ratio is None else float(ratio),
        )

    def threshold(self, slot: str) -> float:
        """eta of ``slot``."""
        return self.settings(slot).eta

    def problem(self, loss: TreeLoss, slot: str) -> tuple[str, str] | None:
        """``(outcome, reason)`` if the ``shared`` protocol ends ``loss`` before any optimisation
        (``rejected``, or ``invalid`` for a non-finite value), else ``None``.

        The gradient-scale check runs where the task sets ``max_grad_ratio``; the ordering check
        where the slot's adapter declares ordering probes (:meth:`Adapter.ordering_probes`).
        """
        if self.settings(slot).protocol != "shared":
            return None
        non_finite = (INVALID, f"non-finite loss during LRP ({slot})")
        ratio = self.settings(slot).max_grad_ratio
        if ratio is not None:
            scale = self.gradient_scale(loss, slot)
            if scale is None:
                return non_finite
            if scale > ratio:
                return (
                    REJECTED,
                    f"{slot}: gradient {scale:.3g}x the reference baseline's (slots would fight)",
                )
        far = self.far_problem(loss, slot)
        if far is not None:
            return far
        probes = self.ordering_probes(slot)
        if not probes:
            return None
        verdict = misorders(loss, probes, probe_batch(self.task, slot).targets)
        if verdict is None:
            return non_finite
        if verdict:
            return REJECTED, f"{slot}: ranks confident mistakes or the majority class above the truth"
        return None

    def gradient_scale(self, loss: TreeLoss, slot: str) -> float | None:
        """||dL/dy_hat|| on the probe batch over that of the task's first tree baseline for
        ``slot``. In a multi-slot task the slots' losses are summed into one training, so a slot
        whose gradient is orders of magnitude larger drowns the others in the shared trunk.
        ``None``: non-finite."""
        batch = probe_batch(self.task, slot)
        reference = self._reference_norm(slot)
        if reference is None:
            raise GpLossError(
                f"task {self.task.name!r} sets max_grad_ratio but has no tree baseline for slot {slot!r}"
            )
        probe = probe_gradient(loss, batch.predictions, batch.targets)
        if not probe.finite:
            return None
        return float(probe.grad.norm()) / max(reference, 1e-12)

    def _reference_norm(self, slot: str) -> float | None:
        """The gradient norm of the slot's first tree baseline (by baseline name) at the probe
        batch (``None``: the task has no tree baseline for the slot)."""
        if slot not in self._reference_norms:
            trees = [trees[slot] for _, trees in sorted(self.task.baselines.items()) if slot in trees]
            if not trees:
                return None
            batch = probe_batch(self.task, slot)
            reference = TreeLoss.for_slot(self.task.slot(slot), trees[0], True)  # baselines may use one
            grad = probe_gradient(reference, batch.predictions, batch.targets).grad
            self._reference_norms[slot] = float(grad.norm())
        return self._reference_norms[slot]

    def gain(self, loss: TreeLoss, slot: str) -> float | None:
        """The metric gain g of one slot's loss; ``None`` if the loss turned non-finite."""
        settings = self.settings(slot)

        def metric(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return self.task.probe_metric(slot, predictions, targets)

        head = probe_head(self.task, slot) if settings.protocol == "shared" else None
        if head is not None and len(head) > 0:  # no probe samples (no positives): free predictions
            return trainable_head_gain(
                loss,
                head.features,
                head.targets,
                head.outputs,
                metric,
                settings.steps,
                settings.lr,
                head.decode,
                hidden=settings.hidden,
                per_channel=head.per_channel,
                seed=self.task.seed,
            )
        batch = probe_batch(self.task, slot)
        return free_prediction_gain(
            loss, batch.predictions, batch.targets, metric, settings.steps, settings.lr
        )

    def verdict(self, loss: TreeLoss, slot: str) -> tuple[str, float | None, str | None]:
        """``(outcome, gain, reason)`` of one slot's loss: outcome ``passed``, ``rejected`` or
        ``invalid``; the gain where one was measured; the reason where a check ended it.

        A slot's verdict depends on its tree alone (fixed probe, seeded head), so it is kept:
        a child that mutates one slot of a genome re-judges only that slot.
        """
        key = (slot, loss.tree)
        if key not in self._verdicts:
            if len(self._verdicts) >= VERDICT_CACHE:
                self._verdicts.pop(next(iter(self._verdicts)))  # oldest first
            self._verdicts[key] = self.judge(loss, slot)
        return self._verdicts[key]

    def judge(self, loss: TreeLoss, slot: str) -> tuple[str, float | None, str | None]:
        """:meth:`verdict` computed afresh (benches time it)."""
        ended = self.problem(loss, slot)
        if ended is not None:
            return ended[0], None, ended[1]
        gain = self.gain(loss, slot)
        if gain is None:
            return INVALID, None, f"non-finite loss during LRP ({slot})"
        eta = self.threshold(slot)
        if gain >= eta:
            return "passed", gain, None
        return REJECTED, gain, f"{slot}: LRP gain {gain:.3f} below eta {eta:g}"

    def evaluate(self, candidate: Candidate) -> Evaluation:
        start = time.perf_counter()
        losses = slot_losses(self.context, candidate)
        gains: dict[str, float] = {}
        passed: list[str] = []
        for slot in self.task.slots:
            outcome, gain, reason = self.verdict(losses[slot.name], slot.name)
            if gain is not None:
                gains[slot.name] = gain
            if outcome != "passed":
                spent = {self.name: time.perf_counter() - start}
                return Evaluation(outcome, reason=reason, lrp_gain=gains, seconds=spent, passed_slots=passed)
            passed.append(slot.name)
        result = self._pass_on(candidate, time.perf_counter() - start)
        result.lrp_gain = {**gains, **result.lrp_gain}
        result.passed_slots = passed
        return result


_NOTICED: set[tuple[str, str]] = set()


def _notice_once(task, slot: str) -> None:
    """Say once per process (the driver's, not each worker's) that ``slot`` falls back to the
    paper's protocol because its adapter declares no ordering probes."""
    import multiprocessing

    if (task.name, slot) in _NOTICED or multiprocessing.parent_process() is not None:
        return
    _NOTICED.add((task.name, slot))
    adapter = task.slot(slot).adapter
    print(
        f"gp-loss: slot {slot!r}: adapter {adapter!r} declares no ordering probes "
        "(Adapter.ordering_probes), so the Loss-Rejection Protocol judges it with the paper's protocol",
        file=sys.stderr,
        flush=True,
    )


def _task_lrp_defaults(task, protocol: str) -> Mapping[str, Any]:
    """The task's LRP defaults for ``protocol``. A flat ``lrp_defaults`` dict means ``paper``;
    a task that declares no ``shared`` settings runs it with its ``paper`` ones."""
    from tasks.base import Task

    declared = task.lrp_defaults
    if not any(key in declared for key in PROTOCOLS):
        declared = {"paper": declared}
    if protocol in declared:
        return {**Task.lrp_defaults[protocol], **declared[protocol]}
    if protocol == "shared" and "paper" in declared:
        return {**Task.lrp_defaults["paper"], **declared["paper"]}
    return Task.lrp_defaults[protocol]
