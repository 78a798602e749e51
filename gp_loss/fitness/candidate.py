"""What flows through the fitness pipeline: a candidate in, an :class:`Evaluation` out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gp_loss.core.events import OUTCOMES as OUTCOMES  # named once there; older scripts import it from here


@dataclass
class Candidate:
    """One explored loss: a tree string per slot.

    Attributes:
        genome: slot name -> tree string (canonical DEAP form).
        id: position in the run's exploration order (``None`` outside a run).
        context: scratch space the stages share (probe gradients), never persisted.
    """

    genome: dict[str, str]
    id: int | None = None
    context: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> str:
        """Canonical string of the whole genome (duplicate detection)."""
        return " | ".join(f"{slot}={tree}" for slot, tree in sorted(self.genome.items()))


@dataclass
class Evaluation:
    """The recorded outcome of one candidate.

    Attributes:
        outcome: stage where the candidate ended (one of :data:`gp_loss.core.events.OUTCOMES`; ``timeout``: the
            evaluation ran past ``--eval-timeout``; ``failed``: its worker died twice).
        fitness: target metric of the proxy training (worst value if diverged); ``None`` for
            candidates that never earn one (invalid, rejected) — they never enter a population.
        metrics: all metrics of the proxy training.
        lrp_gain: per slot, the Loss-Rejection Protocol's metric gain g.
        gec_key: the Gradient-Equivalence-Check fingerprint.
        reused_from: for duplicate/equivalent, the id of the candidate whose result is reused.
        source_outcome: for duplicate/equivalent/cached, the reused result's own outcome.
        reason: why a candidate is invalid.
        seconds: time spent per stage.
        worker: where a remote evaluation ran (process id, seconds, CUDA_VISIBLE_DEVICES).
        passed_slots: the slots whose Loss-Rejection check passed (all of them for a candidate
            that went on to training; those before the failing slot for a rejected one).
        rungs: the proxy training's rungs reached, in order: ``{"steps", "fitness"}`` each, and
            ``"hurdle"`` where one applied (see :mod:`gp_loss.fitness.rungs`); ``fitness`` is
            the last one's. Empty for candidates never trained.
    """

    outcome: str
    fitness: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    lrp_gain: dict[str, float] = field(default_factory=dict)
    gec_key: str | None = None
    reused_from: int | None = None
    source_outcome: str | None = None
    reason: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    worker: dict[str, Any] | None = None
    passed_slots: list[str] = field(default_factory=list)
    rungs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rung(self) -> int:
        """Index of the last rung reached (0 for single-rung and untrained results)."""
        return max(0, len(self.rungs) - 1)

    @property
    def admissible(self) -> bool:
        """Whether the candidate may enter a population (it has a fitness)."""
        return self.fitness is not None

    @property
    def effective_outcome(self) -> str:
        """The outcome that counts: the reused one for duplicates, equivalents and cached."""
        return self.source_outcome or self.outcome

    def reuse(self, outcome: str, source_id: int | None, seconds: Mapping[str, float]) -> Evaluation:
        """This result, recorded again for a duplicate or equivalent candidate."""
        return Evaluation(
            outcome=outcome,
            fitness=self.fitness,
            metrics=dict(self.metrics),
            lrp_gain=dict(self.lrp_gain),
            gec_key=self.gec_key,
            reused_from=source_id,
            source_outcome=self.effective_outcome,
            reason=self.reason,
            seconds=dict(seconds),
            passed_slots=list(self.passed_slots),
            rungs=[dict(r) for r in self.rungs],
        )

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (events.jsonl)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_json`."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
