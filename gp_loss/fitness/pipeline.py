"""The full fitness pipeline, assembled from the stages with switches for the ablations."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.stages import (
    Deduplicate,
    GradientEquivalence,
    LossRejection,
    ProxyTraining,
    Validity,
    as_candidate,
)
from gp_loss.variation import MAX_HEIGHT, MAX_NODES


@dataclass
class PipelineOptions:
    """Switches and parameters of the fitness pipeline (DESIGN section 3).

    ``gec``/``lrp``/``stop_invalid`` map to ``--no-gec``/``--no-lrp``/``--no-stop-invalid``.
    ``None`` for an LRP parameter means the task's calibrated default.
    """

    gec: bool = True
    lrp: bool = True
    stop_invalid: bool = True
    lrp_steps: int | None = None
    lrp_lr: float | None = None
    lrp_eta: float | None = None
    max_height: int = MAX_HEIGHT
    max_nodes: int = MAX_NODES
    constant_one: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for run.json."""
        return asdict(self)


class FitnessPipeline:
    """duplicate -> invalid -> equivalent -> rejected -> diverged / trained.

    Call it with a candidate (see :func:`as_candidate`); it returns an :class:`Evaluation`.
    ``remember`` replays a recorded evaluation into the caches (resume).
    """

    def __init__(self, task, options: PipelineOptions | None = None) -> None:
        self.task = task
        self.options = options = options or PipelineOptions()
        one = options.constant_one
        self.proxy = ProxyTraining(task, stop_invalid=options.stop_invalid, constant_one=one)
        self.lrp = LossRejection(
            self.proxy,
            task,
            steps=options.lrp_steps,
            lr=options.lrp_lr,
            eta=options.lrp_eta,
            constant_one=one,
            enabled=options.lrp,
        )
        self.gec = GradientEquivalence(self.lrp, task, constant_one=one, enabled=options.gec)
        self.validity = Validity(
            self.gec, task, max_height=options.max_height, max_nodes=options.max_nodes, constant_one=one
        )
        self.dedup = Deduplicate(self.validity, task)

    def __call__(self, item: Any) -> Evaluation:
        return self.dedup(as_candidate(self.task, item))

    def remember(self, candidate: Candidate, result: Evaluation) -> None:
        """Feed a recorded result back into the duplicate and GEC caches."""
        self.dedup.remember(candidate.key, candidate.id, result)  # as the live run did: first id wins
        if result.gec_key is not None and result.outcome not in ("duplicate", "equivalent"):
            self.gec.remember(result.gec_key, candidate.id, result)
