"""``train``: retrain a task's model with a baseline or a found loss; final numbers on test."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Union

from gp_loss.core.errors import GpLossError
from gp_loss.trees.best_json import read_best
from gp_loss.trees.loss_module import TreeLoss

#: Short names users type for common baselines.
ALIASES = {
    "ce": "cross_entropy",
    "soft_dice": "dice",
    "iou_loss": "iou",
    "giou_loss": "giou",
    "awing": "adaptive_wing",
}

#: What a training is given: a baseline name of the task, a best.json / run directory, or the
#: trees themselves, slot -> tree string.
LossSpec = Union[str, Mapping[str, str]]  # noqa: UP007  (a runtime alias on Python 3.9 syntax rules)


def resolve_losses(task, spec: LossSpec, pick: int | None = None) -> tuple[str, dict]:
    """``spec`` is a baseline name of the task (or an alias), a best.json / run directory
    (``pick``: a member of its Pareto front), or a ``{slot: tree}`` mapping."""
    if isinstance(spec, Mapping):
        missing = sorted({s.name for s in task.slots} - set(spec))
        if missing:
            raise GpLossError(f"trees {dict(spec)} lack slot(s) {missing} of task {task.name!r}")
        label = ", ".join(f"{slot}: {tree}" for slot, tree in spec.items())
        return label, {slot.name: TreeLoss.for_slot(slot, spec[slot.name], True) for slot in task.slots}
    path = Path(spec)
    if spec.endswith(".json") or path.is_dir() or path.exists():
        best = read_best(path, pick)
        wanted = {s.name for s in task.slots}
        if set(best.slots) != wanted:
            raise GpLossError(
                f"{spec} has slots {sorted(best.slots)}, task {task.name!r} needs {sorted(wanted)}"
            )
        return str(spec), {
            name: TreeLoss(loss.tree, loss.signature, loss.options) for name, loss in best.slots.items()
        }
    name = ALIASES.get(spec, spec)
    if name in task.reference_losses:
        return name, task.reference_losses[name](task)
    if name in task.baselines:
        trees = task.baselines[name]
        return name, {slot.name: TreeLoss.for_slot(slot, trees[slot.name], True) for slot in task.slots}
    known = ", ".join(task.baseline_names())
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


def headline(run: SeedRun) -> str:
    """A progress line's summary of one training: why it diverged, or its first two metrics."""
    return run.diverged or ", ".join(f"{k} {v:.3f}" for k, v in list(run.metrics.items())[:2])


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


def job_task(task_name: str, options: dict, imports: tuple[str, ...] = ()):
    """The task in a spawned job process: one torch thread, the user's modules imported again
    (they register the task there too)."""
    import torch

    from gp_loss.engine.imports import import_modules
    from tasks import get_task

    torch.set_num_threads(1)
    import_modules(imports)
    return get_task(task_name, **options)


def _job(task_name: str, options: dict, spec: LossSpec, seed: int, imports: tuple[str, ...] = ()) -> SeedRun:
    """One final training in a spawned job process (one torch thread)."""
    task = job_task(task_name, options, imports)
    _, losses = resolve_losses(task, spec)
    return train_seed(task, losses, seed)


def train_many(
    task,
    options: Mapping[str, Any],
    jobs: Sequence[tuple[Any, LossSpec, int]],
    workers: int = 1,
    imports: tuple[str, ...] = (),
    processes: bool | None = None,
) -> Iterator[tuple[Any, int, SeedRun]]:
    """Final trainings ``(key, spec, seed)``, yielded as ``(key, seed, run)`` as each finishes.

    In this process (the default for one worker) they train one after the other and their
    progress shows; in processes (the default for several) ``workers`` spawned processes with
    one torch thread each rebuild ``task`` by its name from ``options`` (and ``imports``)."""
    if not (workers > 1 if processes is None else processes):
        for key, spec, seed in jobs:
            _, losses = resolve_losses(task, spec)
            yield key, seed, train_seed(task, losses, seed)
        return
    from concurrent.futures import as_completed

    from gp_loss.execution.spawn import spawn_pool

    with spawn_pool(workers) as pool:
        futures = {
            pool.submit(_job, task.name, dict(options), spec, seed, tuple(imports)): (key, seed)
            for key, spec, seed in jobs
        }
        for future in as_completed(futures):
            key, seed = futures[future]
            yield key, seed, future.result()


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


def train(task, spec: str, seeds: int = 1, first_seed: int = 0, pick: int | None = None) -> TrainReport:
    """Train with ``seeds`` seeds (``first_seed`` onwards), progress on stderr; ``pick``: a
    member of a best.json's Pareto front."""
    from tasks.training import progress

    if seeds < 1:
        raise GpLossError("--seeds must be at least 1")
    label, losses = resolve_losses(task, spec, pick)
    if pick is not None:
        label = f"{label} (front member {pick})"
    with progress():
        runs = [train_seed(task, losses, first_seed + i) for i in range(seeds)]
    return TrainReport(task.name, label, runs, list(task.metrics), task.final_split)
