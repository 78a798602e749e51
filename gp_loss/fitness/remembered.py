"""The stage that consults the persistent search cache (:mod:`gp_loss.engine.search_cache`) first."""

from __future__ import annotations

from gp_loss.core.events import CACHED
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.stage import Stage


class Remembered(Stage):
    """A genome that an earlier run judged under the same task fingerprint ends as ``cached``
    with that run's result; :class:`gp_loss.fitness.stages.GradientEquivalence` asks
    :meth:`equivalent` for a stored loss with the same gradient key.

    Args:
        inner: the next stage.
        cache: the :class:`gp_loss.engine.search_cache.SearchCache`.
        fingerprint: the task fingerprint (:func:`gp_loss.engine.search_cache.task_fingerprint`).
        run: this run's name, stored beside what it computes.
    """

    name = "cache"

    def __init__(self, inner, task=None, *, cache, fingerprint: str, run: str | None = None) -> None:
        super().__init__(inner, task)
        self.cache, self.fingerprint, self.run = cache, fingerprint, run

    def screen(self, candidate: Candidate) -> Evaluation | None:
        found = self.cache.lookup(self.fingerprint, candidate.key)
        if found is None:
            return None
        cached = found.reuse(CACHED, None, {})
        cached.reason = f"cache: judged before ({found.effective_outcome})" + (
            f"; {found.reason}" if found.reason else ""
        )
        return cached

    def equivalent(self, gec_key: str) -> Evaluation | None:
        """``cached``: a stored trained loss with the same gradient-equivalence key."""
        found = self.cache.lookup_equivalent(self.fingerprint, gec_key)
        if found is None:
            return None
        cached = found.reuse(CACHED, None, {})
        cached.reason = "cache: gradient-equivalent to a loss trained before"
        return cached

    def learn(self, candidate: Candidate, result: Evaluation) -> None:
        self.cache.store(self.fingerprint, candidate.key, result, self.run)
