"""The one retraining service: final trainings of named losses over seeds, resumable.

``finalize``, ``bench table``, ``bench noise`` and ``bench paper`` all retrain losses the same
way: every loss with the same seeds 0..N-1 (so results pair by seed: the same initialisation and
the same batch order), at the task's final protocol (``task.final_evaluate``), through
:func:`gp_loss.results.final_training.train_many` (spawned job processes with one torch thread each, or in this
process). With a :class:`TrainingLog` every finished training is appended to a JSONL file
(fsynced) keyed by its losses, seed, task options and the final protocol's version, so a run
killed at any moment and started again redoes only the trainings that had not finished.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gp_loss.results.final_training import LossSpec, SeedRun, headline, resolve_losses, train_many
from gp_loss.run.jsonl import append, repair_torn_tail


def training_key(spec: LossSpec, task_options: Mapping[str, Any]) -> str:
    """What identifies a loss's trainings in a log: its losses, the task's options and the
    version of the final protocol (a changed protocol never reuses an old result)."""
    from tasks.training import FINAL_PROTOCOL

    return json.dumps(
        {"losses": spec, "task_options": dict(task_options), "protocol": FINAL_PROTOCOL},
        sort_keys=True,
        default=str,
    )


class TrainingLog:
    """A JSONL file of finished trainings, one line each, appended and fsynced; a torn last line
    (a kill mid-write) is cut off when the log is read."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.done: dict[tuple[str, int], SeedRun] = {}
        if self.path.exists():
            for line in repair_torn_tail(self.path).decode("utf-8").splitlines():
                entry = json.loads(line)
                self.done[entry["key"], entry["seed"]] = SeedRun(**entry["run"])

    def add(self, key: str, seed: int, run: SeedRun) -> None:
        """Record one finished training (durable before this returns)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append(self.path, {"key": key, "seed": seed, "run": asdict(run)})
        self.done[key, seed] = run


def stderr_say(text: str) -> None:
    """A progress line on stderr."""
    print(text, file=sys.stderr, flush=True)


def retrain(
    task,
    options: Mapping[str, Any],
    losses: Sequence[tuple[str, LossSpec]],
    seeds: int,
    *,
    jobs: int = 1,
    imports: tuple[str, ...] = (),
    log: TrainingLog | None = None,
    say: Callable[[str], None] | None = stderr_say,
    processes: bool | None = None,
    what: str = "retrain",
    first_seed: int = 0,
) -> dict[str, list[SeedRun]]:
    """Train every ``(label, spec)`` with seeds ``first_seed`` onwards; label -> its runs in seed
    order.

    Args:
        task: the task object (the trainings rebuild it by name from ``options`` in job
            processes).
        options: the task's options (the log's key, and what job processes rebuild it from).
        losses: labelled loss specs (baseline names, best.json paths, slot -> tree mappings).
        seeds: trainings per loss.
        jobs: trainings at a time.
        imports: modules that register a user's task, imported again in job processes.
        log: the resumable log; trainings it holds are not run again.
        say: where progress lines go (``None``: nowhere).
        processes: force job processes (``True``) or this process (``False``).
        what: the progress lines' first word.
        first_seed: the first seed (the trainings pair by seed all the same).
    """
    from tasks.training import progress

    for _, spec in losses:  # an unknown loss fails here, before any training
        resolve_losses(task, spec)
    log = log if log is not None else _MemoryLog()
    keys = {label: training_key(spec, options) for label, spec in losses}
    numbers = range(first_seed, first_seed + seeds)
    todo = [
        (label, spec, seed)
        for label, spec in losses
        for seed in numbers
        if (keys[label], seed) not in log.done
    ]
    tell = say or (lambda text: None)
    reused = len(losses) * seeds - len(todo)
    tell(
        f"{what}: {len(losses)} loss(es) x {seeds} seed(s), {len(todo)} training(s) to run"
        + (f", {reused} finished before" if reused else "")
    )
    in_process = not (jobs > 1 if processes is None else processes)
    with progress() if say is not None and in_process else nullcontext():
        trainings = train_many(task, options, todo, jobs, imports, processes)
        for done, (label, seed, result) in enumerate(trainings, 1):
            log.add(keys[label], seed, result)
            tell(f"[{done}/{len(todo)}] {label}, seed {seed}: {headline(result)} ({result.seconds:.0f} s)")
    return {label: [log.done[keys[label], seed] for seed in numbers] for label, _ in losses}


class _MemoryLog:
    """A log that keeps nothing beyond this process (no resume)."""

    def __init__(self) -> None:
        self.done: dict[tuple[str, int], SeedRun] = {}

    def add(self, key: str, seed: int, run: SeedRun) -> None:
        self.done[key, seed] = run
