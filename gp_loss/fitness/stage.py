"""What every stage of the fitness pipeline shares: the :class:`Stage` wrapper, the forms a
candidate may come in, and the per-candidate compiled losses and probe gradients."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gp_loss.core.events import DUPLICATE
from gp_loss.core.settings import SpaceLimits
from gp_loss.core.signature import SlotSignature
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.probe import ProbeGradient, probe_batch, probe_gradient
from gp_loss.trees.loss_module import TreeLoss
from gp_loss.trees.space import LossGenome

EvaluateFn = Callable[[Candidate], Evaluation]


def as_candidate(task, item: Any) -> Candidate:
    """Accept the forms users pass: Candidate, {slot: tree}, a LossTree (one slot) or a LossGenome."""
    if isinstance(item, Candidate):
        return item
    if isinstance(item, Mapping):
        return Candidate({str(k): str(v) for k, v in item.items()})
    slots = [s.name for s in task.slots]
    if isinstance(item, LossGenome) or (isinstance(item, list) and item and not hasattr(item[0], "arity")):
        return Candidate({slot: str(tree) for slot, tree in zip(slots, item)})
    if len(slots) != 1:
        raise TypeError(f"task {task.name!r} has slots {slots}: pass a LossGenome or a {{slot: tree}} dict")
    return Candidate({slots[0]: str(item)})


@dataclass(frozen=True)
class RunContext:
    """What every stage of one search shares: the task, the space's limits (height, nodes,
    whether the constant ``one`` is a terminal) and the slot signatures they give. Built once
    per pipeline; the stages read the signatures from here instead of each being told
    ``constant_one``."""

    task: Any
    space: SpaceLimits = field(default_factory=SpaceLimits)

    @cached_property
    def signatures(self) -> dict[str, SlotSignature]:
        """Slot name -> its signature in this search space."""
        return {slot.name: slot.signature(self.space.constant_one) for slot in self.task.slots}


def slot_losses(context: RunContext, candidate: Candidate) -> dict[str, TreeLoss]:
    """The candidate's compiled loss modules, built once per candidate."""
    if "losses" not in candidate.context:
        candidate.context["losses"] = {
            slot.name: TreeLoss(
                candidate.genome[slot.name], context.signatures[slot.name], slot.adapter_options
            )
            for slot in context.task.slots
        }
    return candidate.context["losses"]


def slot_probes(context: RunContext, candidate: Candidate) -> dict[str, ProbeGradient]:
    """Per slot: loss value and gradient at the fixed probe predictions (computed once)."""
    if "probes" not in candidate.context:
        losses = slot_losses(context, candidate)
        probes = {}
        for slot in context.task.slots:
            batch = probe_batch(context.task, slot.name)
            probes[slot.name] = probe_gradient(losses[slot.name], batch.predictions, batch.targets)
        candidate.context["probes"] = probes
    return candidate.context["probes"]


def context_of(inner: Any, task=None, space: SpaceLimits | None = None) -> RunContext:
    """A stage's :class:`RunContext`: built from ``task`` and ``space`` where given, else the
    inner stage's (the nested form ``GradientEquivalence(LossRejection(ProxyTraining(task)))``
    names the task once)."""
    inner_context = getattr(inner, "context", None)
    if task is None:
        if inner_context is None:
            raise TypeError("a stage needs its task, or an inner stage that has one")
        task = inner_context.task
    if space is None:
        space = (
            inner_context.space if inner_context is not None and inner_context.task is task else SpaceLimits()
        )
    return RunContext(task, space)


class Stage:
    """Base of the wrappers: holds the task and the inner evaluate function; times itself.

    A screening stage (duplicate, invalid, equivalent) implements :meth:`screen`, which ends a
    candidate with a result or lets it through; the pipeline runs exactly these methods, and a
    stage called on its own runs :meth:`screen`, then the inner stage, then :meth:`learn`.
    """

    name = "stage"

    def __init__(
        self, inner: EvaluateFn | Any, task=None, *, enabled: bool = True, space: SpaceLimits | None = None
    ) -> None:
        self.context = context_of(inner, task, space)
        self.inner = inner
        self.enabled = enabled

    @property
    def task(self):
        """The task searched."""
        return self.context.task

    def __call__(self, item: Any) -> Evaluation:
        candidate = as_candidate(self.task, item)
        if not self.enabled:
            return self.inner(candidate)
        return self.evaluate(candidate)

    def screen(self, candidate: Candidate) -> Evaluation | None:
        """The result that ends ``candidate`` here, or ``None`` to go on (default: go on)."""
        return None

    def learn(self, candidate: Candidate, result: Evaluation) -> None:
        """Remember the final result of a candidate this stage let through (caches)."""

    def timed_screen(self, candidate: Candidate) -> Evaluation | None:
        """:meth:`screen`, its seconds added to ``candidate.context["seconds"][name]``."""
        start = time.perf_counter()
        found = self.screen(candidate)
        seconds = candidate.context.setdefault("seconds", {})
        seconds[self.name] = seconds.get(self.name, 0.0) + time.perf_counter() - start
        return found

    def evaluate(self, candidate: Candidate) -> Evaluation:
        found = self.timed_screen(candidate)
        spent = candidate.context["seconds"][self.name]
        if found is not None:
            if found.outcome != DUPLICATE:  # a duplicate costs nothing: no seconds
                found.seconds.setdefault(self.name, spent)
            return found
        result = self._pass_on(candidate, spent)
        self.learn(candidate, result)
        return result

    def _pass_on(self, candidate: Candidate, spent: float) -> Evaluation:
        result = self.inner(candidate)
        result.seconds[self.name] = result.seconds.get(self.name, 0.0) + spent
        return result
