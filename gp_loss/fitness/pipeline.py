"""The full fitness pipeline, assembled from the stages with switches for the ablations."""

from __future__ import annotations

from typing import Any

from gp_loss.core.events import DUPLICATE, EQUIVALENT, FAILED, TIMEOUT
from gp_loss.core.settings import PipelineOptions as PipelineOptions  # its home is gp_loss.core.settings
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.remembered import Remembered
from gp_loss.fitness.rungs import hurdles
from gp_loss.fitness.stages import (
    Deduplicate,
    GradientEquivalence,
    LossRejection,
    ProxyTraining,
    Stage,
    Validity,
    as_candidate,
)


class FitnessPipeline:
    """duplicate -> cached -> invalid -> equivalent (or cached) -> rejected -> diverged / trained.

    Call it with a candidate (see :func:`as_candidate`); it returns an :class:`Evaluation`.
    Execution backends split the call in three: :meth:`screen` (stages 1-3, cheap, in the
    driver, where the caches live), :meth:`remote` (LRP and proxy training, anywhere) and
    :meth:`record` (back in the driver). :meth:`record` also replays a run's events on resume.
    """

    def __init__(self, task, options: PipelineOptions | None = None, memory=None) -> None:
        """``memory``: ``(SearchCache, fingerprint, run name)`` of the persistent search cache
        (:mod:`gp_loss.engine.search_cache`), consulted after this run's own duplicates; ``None``: off."""
        self.task = task
        self.options = options = options or PipelineOptions()
        space = options.space  # the one run context every stage shares (task, limits, signatures)
        self.proxy = ProxyTraining(task, stop_invalid=options.stop_invalid, rungs=options.rungs, space=space)
        self.lrp = LossRejection(
            self.proxy,
            task,
            protocol=options.lrp_protocol,
            steps=options.lrp_steps,
            lr=options.lrp_lr,
            eta=options.lrp_eta,
            enabled=options.lrp,
        )
        self.gec = GradientEquivalence(self.lrp, enabled=options.gec)
        self.validity = Validity(self.gec)
        self.memory = None
        first = self.validity
        if memory is not None:
            cache, fingerprint, run = memory
            self.memory = first = Remembered(
                self.validity, task, cache=cache, fingerprint=fingerprint, run=run
            )
            self.gec.memory = self.memory
        self.dedup = Deduplicate(first, task)
        #: the task, the space's limits and the slot signatures every stage shares
        self.context = self.proxy.context

    @property
    def stages(self) -> tuple[Stage | ProxyTraining, ...]:
        """Every stage, in the order a candidate meets them (the persistent cache's only where
        there is one): the screening stages, which run in the driver where the caches live
        (:meth:`screen`), then the Loss-Rejection Protocol and the proxy training, which run on
        the execution backend (:meth:`remote`)."""
        found = (self.dedup, self.memory, self.validity, self.gec, self.lrp, self.proxy)
        return tuple(stage for stage in found if stage is not None)

    @property
    def screening(self) -> tuple[Stage, ...]:
        """Stages 1-3 in order, those switched on: what :meth:`screen` runs."""
        return tuple(s for s in self.stages if s not in (self.lrp, self.proxy) and s.enabled)

    def screen(self, candidate: Candidate) -> Evaluation | None:
        """Stages 1-3: a final result (duplicate, invalid, equivalent) or ``None`` to go on."""
        for stage in self.screening:
            found = stage.timed_screen(candidate)
            if found is not None:
                if found.outcome != DUPLICATE:  # a duplicate costs nothing: no seconds
                    found.seconds = {**candidate.context["seconds"], **found.seconds}
                found.seconds.pop(self.dedup.name, None)
                return found
        return None

    def remote(self, candidate: Candidate) -> Evaluation:
        """Stages 4-6: Loss-Rejection Protocol (if on) and proxy training."""
        return self.lrp(candidate)

    def finish(self, candidate: Candidate, result: Evaluation) -> Evaluation:
        """Attach the screening's key and seconds to a remote result, then :meth:`record` it."""
        for stage, spent in candidate.context.get("seconds", {}).items():
            if stage != self.dedup.name:
                result.seconds.setdefault(stage, spent)
        if candidate.context.get("gec_key") and result.outcome not in (DUPLICATE, EQUIVALENT):
            result.gec_key = candidate.context["gec_key"]
        self.record(candidate, result)
        return result

    def record(self, candidate: Candidate, result: Evaluation) -> None:
        """Enter a final result into the duplicate and GEC caches (first id wins)."""
        if result.outcome in (TIMEOUT, FAILED):
            return  # not a property of the loss: a later copy is evaluated again
        self.dedup.remember(candidate.key, candidate.id, result)
        if result.gec_key is not None and result.outcome not in (DUPLICATE, EQUIVALENT):
            self.gec.remember(result.gec_key, candidate.id, result)
        if self.memory is not None:  # only computed results are stored (a reuse is not one)
            self.memory.learn(candidate, result)

    def hurdles(self, history: list[list[float]]) -> list[float | None]:
        """The hurdles a candidate sent out now must clear, from the scores earlier candidates
        reached at each rung (the search state's ``rung_scores``)."""
        return hurdles(history, len(self.proxy.steps), self.options.promote)

    def __call__(self, item: Any) -> Evaluation:
        candidate = as_candidate(self.task, item)
        result = self.screen(candidate)
        if result is None:
            return self.finish(candidate, self.remote(candidate))
        self.record(candidate, result)
        return result
