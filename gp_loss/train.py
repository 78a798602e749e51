"""``train``: retrain a task's model with a baseline or a found loss; final numbers on test."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gp_loss.errors import GpLossError
from gp_loss.exchange import read_best
from gp_loss.module import TreeLoss

#: Short names users type for common baselines.
ALIASES = {"ce": "cross_entropy", "soft_dice": "dice", "iou_loss": "iou", "giou_loss": "giou"}


def resolve_losses(task, spec: str) -> tuple[str, dict]:
    """``spec`` is a baseline name of the task (or an alias) or a best.json / run directory."""
    path = Path(spec)
    if spec.endswith(".json") or path.is_dir() or path.exists():
        best = read_best(path)
        wanted = {s.name for s in task.slots}
        if set(best.slots) != wanted:
            raise GpLossError(
                f"{spec} has slots {sorted(best.slots)}, task {task.name!r} needs {sorted(wanted)}"
            )
        return str(spec), {
            name: TreeLoss(loss.tree, loss.signature, loss.options) for name, loss in best.slots.items()
        }
    name = ALIASES.get(spec, spec)
    if name in task.baselines:
        trees = task.baselines[name]
        return name, {slot.name: TreeLoss.for_slot(slot, trees[slot.name], True) for slot in task.slots}
    if name in task.custom_losses:
        return name, task.custom_losses[name](task)
    known = ", ".join(sorted({*task.baselines, *task.custom_losses}))
    raise GpLossError(f"unknown loss {spec!r} for task {task.name!r}; known: {known}, or a best.json path")


@dataclass
class SeedRun:
    """One final training: its test metrics, or why it diverged (then it has no metrics)."""

    seed: int
    metrics: dict[str, float] | None
    diverged: str | None
    seconds: float


def train_seed(task, losses: Mapping, seed: int) -> SeedRun:
    """``task.final_evaluate`` with ``seed``; a diverged training is a :class:`SeedRun` without
    metrics, never a row of zeros."""
    from tasks.training import TrainingDiverged

    start = time.perf_counter()
    try:
        metrics = task.final_evaluate(losses, seed=seed)
    except TrainingDiverged as err:
        return SeedRun(seed, None, f"diverged at step {err.steps}: {err.reason}", time.perf_counter() - start)
    return SeedRun(seed, dict(metrics), None, time.perf_counter() - start)


def summarise(runs: Sequence[SeedRun], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per metric: mean (``None`` if no seed trained), std (0 for one value) and the number of
    seeds that trained."""
    summary: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        values = [r.metrics[metric] for r in runs if r.metrics is not None]
        summary[metric] = {
            "mean": statistics.mean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "trained": len(values),
        }
    return summary


def mean_std(summary: Mapping[str, Any], scale: float = 1.0, digits: int = 4) -> str:
    """A table cell: ``mean +- std``, ``diverged`` where no seed trained, and the number of
    diverged seeds where some did."""
    if summary["trained"] == 0:
        return "diverged"
    return f"{scale * summary['mean']:.{digits}f} +- {scale * summary['std']:.{digits}f}"


def diverged_note(runs: Sequence[SeedRun]) -> str:
    """`` (seed 2 diverged)``-style suffix, empty when every seed trained."""
    bad = [str(r.seed) for r in runs if r.diverged is not None]
    if not bad or len(bad) == len(runs):
        return ""
    return f" (seed{'s' if len(bad) > 1 else ''} {', '.join(bad)} diverged)"


@dataclass
class TrainReport:
    """What ``train`` measured: every seed's run and the summary per metric."""

    task: str
    loss: str
    runs: list[SeedRun]
    metrics: list[str]
    split: str = "test"

    def to_json(self) -> dict[str, Any]:
        """One JSON document (``train --json``)."""
        return {
            "task": self.task,
            "loss": self.loss,
            "split": self.split,
            "seeds": [asdict(r) for r in self.runs],
            "summary": summarise(self.runs, self.metrics),
        }

    def markdown(self) -> str:
        """A Markdown table of each test metric, mean +- std over the seeds that trained."""
        lines = [
            f"task {self.task}, loss {self.loss}, {len(self.runs)} seed(s), metrics on the {self.split} split",
            "",
            "| metric | mean +- std | per seed |",
            "|---|---:|---|",
        ]
        summary = summarise(self.runs, self.metrics)
        for metric in self.metrics:
            seeds = ", ".join(
                "diverged" if r.metrics is None else f"{r.metrics[metric]:.4f}" for r in self.runs
            )
            lines.append(f"| {metric} | {mean_std(summary[metric])} | {seeds} |")
        lines += [f"seed {r.seed}: {r.diverged}" for r in self.runs if r.diverged]
        return "\n".join(lines)


def train(task, spec: str, seeds: int = 1, first_seed: int = 0) -> TrainReport:
    """Train with ``seeds`` seeds (``first_seed`` onwards), progress on stderr."""
    from tasks.training import progress

    if seeds < 1:
        raise GpLossError("--seeds must be at least 1")
    label, losses = resolve_losses(task, spec)
    with progress():
        runs = [train_seed(task, losses, first_seed + i) for i in range(seeds)]
    return TrainReport(task.name, label, runs, list(task.metrics), task.final_split)
