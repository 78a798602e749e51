"""The vocabulary of a run's event log, named once: the outcomes a candidate can end with, what
one event records, and the key candidates are ranked by (docs/architecture.md sections 3 and 6).
Plain constants and a ``TypedDict``: an event stays the JSON dict events.jsonl holds."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

# -- outcomes, in pipeline order ------------------------------------------------------------
#: the genome was explored before in this run: its result is reused
DUPLICATE = "duplicate"
#: an earlier run judged it (the persistent search cache)
CACHED = "cached"
#: a static check or a non-finite value or gradient on the probe batch
INVALID = "invalid"
#: the Gradient-Equivalence-Check matched an earlier loss: its result is reused
EQUIVALENT = "equivalent"
#: the Loss-Rejection Protocol turned it down
REJECTED = "rejected"
#: the proxy training stopped at a non-finite or exploding loss (the worst fitness)
DIVERGED = "diverged"
#: the proxy training finished: the fitness is its validation metric
TRAINED = "trained"
#: the evaluation ran past ``--eval-timeout``
TIMEOUT = "timeout"
#: its worker died twice
FAILED = "failed"

Outcome = Literal[
    "duplicate", "cached", "invalid", "equivalent", "rejected", "diverged", "trained", "timeout", "failed"
]
OUTCOMES: tuple[str, ...] = (
    DUPLICATE, CACHED, INVALID, EQUIVALENT, REJECTED, DIVERGED, TRAINED, TIMEOUT, FAILED,
)  # fmt: skip
#: a proxy training ran for it in this run (a trained or a diverged candidate)
PROXY_TRAINED: tuple[str, ...] = (DIVERGED, TRAINED)
#: it ended with another candidate's result
REUSED: tuple[str, ...] = (DUPLICATE, EQUIVALENT, CACHED)


class Event(TypedDict, total=False):
    """One line of events.jsonl: one explored candidate (the keys every event has, then those
    its outcome and phase add)."""

    id: int
    trees: dict[str, str]
    outcome: Outcome
    time: float
    phase: str
    parents: list[int]
    mutation: str
    seed: str
    fitness: float | None
    metrics: dict[str, float]
    rungs: list[dict[str, Any]]
    lrp_gain: dict[str, float]
    gec_key: str
    reused_from: int
    source_outcome: str
    reason: str
    seconds: dict[str, float]
    entered: bool
    new_best: bool


def rank_key(rung: int, fitness: float) -> tuple[int, float]:
    """How trained candidates compare, everywhere (tournaments, the population, best.json, the
    leaderboard, the trackers): the proxy rung reached first, since scores at different rungs
    are not comparable, then the fitness there. Larger is better."""
    return (rung, fitness)


def rung_of(event: dict[str, Any]) -> int:
    """The index of the last proxy rung an event's candidate reached (0 without rungs)."""
    return max(0, len(event.get("rungs") or ()) - 1)


def event_rank(event: dict[str, Any]) -> tuple[int, float]:
    """:func:`rank_key` of a trained event."""
    return rank_key(rung_of(event), float(event["fitness"]))
