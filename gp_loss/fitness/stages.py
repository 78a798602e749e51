"""The fitness pipeline's stages, each a wrapper around an inner evaluate function.

docs/architecture.md section 3, in order: duplicate -> invalid -> equivalent (Gradient-Equivalence-Check) ->
rejected (Loss-Rejection Protocol, :mod:`gp_loss.fitness.lrp`) -> diverged / trained (proxy
training). A DEAP user stacks them as ``GradientEquivalence(LossRejection(ProxyTraining(task)))``;
each accepts a candidate (:class:`Candidate`, a ``{slot: tree}`` dict, a ``LossTree`` or a
``LossGenome``) and returns an :class:`Evaluation`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.events import DIVERGED, DUPLICATE, EQUIVALENT, INVALID, TRAINED
from gp_loss.core.settings import SpaceLimits
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.lrp import LossRejection
from gp_loss.fitness.probe import gradient_fingerprint
from gp_loss.fitness.rungs import clears, rung_steps
from gp_loss.fitness.stage import EvaluateFn, RunContext, Stage, as_candidate, slot_losses, slot_probes
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.space import tree_inputs
from gp_loss.trees.variation import within_limits

__all__ = [
    "Deduplicate",
    "EvaluateFn",
    "GradientEquivalence",
    "LossRejection",
    "ProxyTraining",
    "Stage",
    "Validity",
    "as_candidate",
    "compose",
    "slot_losses",
    "slot_probes",
]


class ProxyTraining:
    """Innermost evaluate: train the proxy with the candidate's losses; fitness = the task's
    :attr:`~tasks.base.Task.fitness_metric` (its target metric unless it names another).

    Args:
        task: the task.
        stop_invalid: stop at the first non-finite (or exploding) loss -> ``diverged``.
        rungs: fractions of the task's proxy steps where the training is scored; it goes on to
            the next rung only past the hurdle the candidate carries
            (``candidate.context["hurdles"]``, computed by the driver; none: go on). Default:
            the task's :attr:`~tasks.base.Task.default_rungs`.
    """

    name = "proxy"

    def __init__(
        self,
        task,
        *,
        stop_invalid: bool = True,
        rungs: Sequence[float] | None = None,
        space: SpaceLimits | None = None,
    ) -> None:
        self.context = RunContext(task, space or SpaceLimits())
        self.task = task
        self.stop_invalid = stop_invalid
        fractions = tuple(rungs or task.default_rungs)
        if max(fractions, default=0) != 1:
            raise GpLossError(f"rungs {list(fractions)}: the last rung must be 1 (the full proxy training)")
        self.steps = rung_steps(task, fractions)

    def __call__(self, item: Any) -> Evaluation:
        candidate = as_candidate(self.task, item)
        start = time.perf_counter()
        losses = slot_losses(self.context, candidate)
        bars = list(candidate.context.get("hurdles") or [])
        worst = self.task.worst_fitness()
        reached: list[dict[str, Any]] = []
        result = None
        for index, result in enumerate(self._rungs(losses)):
            if result.outcome == DIVERGED:
                break
            fitness = self._fitness(result.metrics)
            reached.append({"steps": result.steps, "fitness": fitness})
            bar = bars[index] if index < len(bars) else None
            if bar is not None:
                reached[-1]["hurdle"] = bar
            if index + 1 < len(self.steps) and not clears(fitness, bar, worst):
                break
        spent = {self.name: time.perf_counter() - start}
        if result is None or result.outcome == DIVERGED:
            return Evaluation(DIVERGED, worst, {}, seconds=spent, rungs=reached)
        return Evaluation(TRAINED, reached[-1]["fitness"], dict(result.metrics), seconds=spent, rungs=reached)

    def _rungs(self, losses) -> Iterator[Any]:
        """One result per rung reached: the task's ``proxy_train`` for a single rung (a task may
        override just that), its resumable ``proxy_rungs`` for several."""
        if len(self.steps) == 1:
            return iter([self.task.proxy_train(losses, stop_invalid=self.stop_invalid)])
        return self.task.proxy_rungs(losses, self.steps, stop_invalid=self.stop_invalid)

    def _fitness(self, metrics: dict[str, float]) -> float:
        wanted = self.task.fitness_metric
        if wanted not in metrics:
            what = "the target metric" if wanted == self.task.metric else "the metric its fitness reads"
            raise GpLossError(
                f"task {self.task.name!r}: proxy_train reported {sorted(metrics)}, not {what} {wanted!r}"
            )
        fitness = metrics[wanted]
        if fitness != fitness:  # NaN metric from a run that was allowed to continue past NaN
            return self.task.worst_fitness()
        return float(fitness)


class GradientEquivalence(Stage):
    """Gradient-Equivalence-Check: same per-sample gradient norms (2 significant digits) on the
    probe batch as an earlier candidate -> reuse its result without training."""

    name = "gec"

    def __init__(
        self,
        inner,
        task=None,
        *,
        digits: int = 2,
        enabled: bool = True,
        memory=None,
        space: SpaceLimits | None = None,
    ) -> None:
        super().__init__(inner, task, enabled=enabled, space=space)
        self.digits = digits
        self.seen: dict[str, tuple[int | None, Evaluation]] = {}
        #: the persistent cache's stage (:class:`gp_loss.fitness.remembered.Remembered`), asked
        #: for a stored loss with the same key when this run has seen none
        self.memory = memory

    def fingerprint(self, candidate: Candidate) -> str:
        """The candidate's GEC key: per slot, the rounded per-sample gradient norms."""
        probes = slot_probes(self.context, candidate)
        return " | ".join(
            f"{slot.name}:{gradient_fingerprint(probes[slot.name].grad, self.digits)}"
            for slot in self.task.slots
        )

    def screen(self, candidate: Candidate) -> Evaluation | None:
        """``equivalent``, reusing the result of the first candidate with the same key."""
        key = candidate.context["gec_key"] = self.fingerprint(candidate)
        if key in self.seen:
            source_id, source = self.seen[key]
            return source.reuse(EQUIVALENT, source_id, {})
        return self.memory.equivalent(key) if self.memory is not None else None

    def learn(self, candidate: Candidate, result: Evaluation) -> None:
        result.gec_key = candidate.context["gec_key"]
        self.remember(result.gec_key, candidate.id, result)

    def remember(self, key: str, source_id: int | None, result: Evaluation) -> None:
        """Record a computed result under its key (also used to rebuild the cache on resume)."""
        self.seen.setdefault(key, (source_id, result))


def static_problem(tree, signature, max_height: int, max_nodes: int) -> str | None:
    """Why one slot's tree is invalid before it is run (a required input unused, over the size
    limits), or ``None``."""
    used = tree_inputs(tree)
    for group in signature.required_inputs:
        if not group & used:
            return f"does not use {' or '.join(sorted(group))}"
    if not within_limits(tree, max_height, max_nodes):
        return f"over the size limits (height {tree.height}, {len(tree)} nodes)"
    return None


class Validity(Stage):
    """Static checks (every required input used, depth and node limits) and a finite value and
    gradient on the probe batch; failures end as ``invalid`` with a reason."""

    name = "validity"

    def __init__(
        self,
        inner,
        task=None,
        *,
        enabled: bool = True,
        space: SpaceLimits | None = None,
    ) -> None:
        super().__init__(inner, task, enabled=enabled, space=space)

    def problem(self, candidate: Candidate) -> str | None:
        """Why the candidate is invalid, or ``None``."""
        space = self.context.space
        for slot in self.task.slots:
            signature = self.context.signatures[slot.name]
            tree = parse_tree(candidate.genome[slot.name], signature)
            reason = static_problem(tree, signature, space.max_height, space.max_nodes)
            if reason is not None:
                return f"{slot.name}: {reason}"
        for name, probe in slot_probes(self.context, candidate).items():
            if not probe.finite:
                return f"{name}: non-finite value or gradient on the probe batch"
        return None

    def screen(self, candidate: Candidate) -> Evaluation | None:
        """``invalid`` with the reason, or ``None``."""
        reason = self.problem(candidate)
        return None if reason is None else Evaluation(INVALID, reason=reason)


class Deduplicate(Stage):
    """A genome seen before reuses its recorded result."""

    name = "dedup"

    def __init__(self, inner, task=None, *, enabled: bool = True) -> None:
        super().__init__(inner, task, enabled=enabled)
        self.seen: dict[str, tuple[int | None, Evaluation]] = {}

    def screen(self, candidate: Candidate) -> Evaluation | None:
        """``duplicate``, reusing the recorded result of the same genome."""
        found = self.seen.get(candidate.key)
        if found is None:
            return None
        source_id, source = found
        return source.reuse(DUPLICATE, source_id, {})

    def learn(self, candidate: Candidate, result: Evaluation) -> None:
        self.remember(candidate.key, candidate.id, result)

    def remember(self, key: str, source_id: int | None, result: Evaluation) -> None:
        """Record a result under its genome key (also used to rebuild the cache on resume)."""
        self.seen.setdefault(key, (source_id, result))


def compose(task, *stages: type[Stage], space: SpaceLimits | None = None) -> Stage | ProxyTraining:
    """The nested form for research scripts: ``compose(task, GradientEquivalence, LossRejection)``
    is ``GradientEquivalence(LossRejection(ProxyTraining(task)))``, outermost stage first, each
    sharing one :class:`RunContext` (``space``: the size limits and the constant ``one``)."""
    evaluate: Stage | ProxyTraining = ProxyTraining(task, space=space)
    for stage in reversed(stages):
        evaluate = stage(evaluate)
    return evaluate
