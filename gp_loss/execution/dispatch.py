"""Runs candidates through the fitness pipeline on a backend, in the driver.

Screening (duplicate, validity, GEC) happens here, where the caches are; LRP and proxy
training go to the backend. A candidate equal to, or gradient-equivalent with, one still in
flight waits for it and then reuses its result, as it would have serially.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gp_loss.core.events import FAILED, TIMEOUT
from gp_loss.fitness.candidate import Candidate, Evaluation

Done = Callable[[Candidate, Any, Evaluation], None]


class Dispatcher:
    """Feeds a backend and reports every finished candidate through ``on_done`` in order.

    Args:
        pipeline: a :class:`FitnessPipeline` (``screen``, ``finish``, ``record``).
        backend: the execution backend.
        next_id: the id the next finished candidate gets (caches refer to it).
        on_done: called once per candidate, as soon as its result is final.
        worst_fitness: fitness of a ``timeout``.
    """

    def __init__(
        self, pipeline, backend, next_id: Callable[[], int], on_done: Done, worst_fitness: float
    ) -> None:
        self.pipeline = pipeline
        self.backend = backend
        self.next_id = next_id
        self.on_done = on_done
        self.worst_fitness = worst_fitness
        self.in_flight: dict[int, tuple[Candidate, Any]] = {}
        self.waiting: dict[str, list[tuple[Candidate, Any]]] = {}
        self._ticket = 0

    @property
    def outstanding(self) -> int:
        """Candidates put and not yet done (in flight or waiting)."""
        return len(self.in_flight) + sum(map(len, self.waiting.values()))

    def has_room(self) -> bool:
        """Whether another evaluation may start now."""
        return len(self.in_flight) < self.backend.workers

    def _settle(self, candidate: Candidate, meta: Any, result: Evaluation, remote: bool) -> None:
        candidate.id = self.next_id()
        if remote:
            self.pipeline.finish(candidate, result)
        else:
            self.pipeline.record(candidate, result)
        self.on_done(candidate, meta, result)

    def put(self, candidate: Candidate, meta: Any = None) -> None:
        """Screen ``candidate``; finish it now, park it behind its twin, or send it out."""
        dup = "dup:" + candidate.key
        if dup in self.waiting:
            self.waiting[dup].append((candidate, meta))
            return
        result = self.pipeline.screen(candidate)
        if result is not None:
            self._settle(candidate, meta, result, remote=False)
            return
        key = candidate.context.get("gec_key")
        if key and "gec:" + key in self.waiting:
            self.waiting["gec:" + key].append((candidate, meta))
            return
        self._send(candidate, meta)

    def _send(self, candidate: Candidate, meta: Any) -> None:
        self.in_flight[self._ticket] = (candidate, meta)
        self.waiting.setdefault("dup:" + candidate.key, [])
        if candidate.context.get("gec_key"):
            self.waiting.setdefault("gec:" + candidate.context["gec_key"], [])
        self.backend.submit(self._ticket, candidate)
        self._ticket += 1

    def collect(self) -> None:
        """Wait for at least one evaluation in flight and settle what finished."""
        for finished in self.backend.wait():
            candidate, meta = self.in_flight.pop(finished.ticket)
            if isinstance(finished.result, Evaluation):
                result = finished.result
            elif finished.result is not None:  # from another process
                result = Evaluation.from_json(finished.result)
            else:
                worst = self.worst_fitness if finished.outcome == TIMEOUT else None
                result = Evaluation(finished.outcome or FAILED, worst, reason=finished.detail[-500:])
            self._settle(candidate, meta, result, remote=True)
            released = self.waiting.pop("dup:" + candidate.key, [])
            if candidate.context.get("gec_key"):
                released += self.waiting.pop("gec:" + candidate.context["gec_key"], [])
            for other, other_meta in released:
                again = self.pipeline.screen(other)
                if again is None:  # its twin timed out or failed: evaluate this one itself
                    self._send(other, other_meta)
                else:
                    self._settle(other, other_meta, again, remote=False)

    def drain(self) -> None:
        """Collect until nothing is in flight."""
        while self.in_flight:
            self.collect()
