"""The public Python API: search a loss for a task, resume a run, retrain a loss.

>>> import gp_loss
>>> result = gp_loss.search("cls_digits", budget="2m", out="runs/demo")
>>> result.best, result.fitness
>>> loss = result.load_loss()                       # a torch.nn.Module
>>> gp_loss.retrain(result.task, result, seeds=3)   # the found loss on the test split
>>> result = gp_loss.resume("runs/demo", budget="5m")

``evolve`` on the command line runs the same functions. Ctrl-C ends a search cleanly: the
run directory is consistent at every moment and :func:`resume` continues it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import (
    GROUPS,
    EvolutionConfig,
    ExecutionOptions,
    PipelineOptions,
    TrackingOptions,
    parse_budget,
)
from gp_loss.engine.evolution import Limits, SearchState
from gp_loss.run.runner import RunSettings, Search, settings_for_task


@dataclass
class SearchResult:
    """What a search left: its run directory, the task and the final state.

    Attributes:
        directory: the run directory (``run.json``, ``events.jsonl``, ``best.json``...).
        task: the task object searched.
        state: the search state at the end (counts, population, best).
        interrupted: the search was stopped by Ctrl-C (``resume`` continues it).
    """

    directory: Path
    task: Any
    state: SearchState
    interrupted: bool = False

    @property
    def best(self) -> dict[str, str] | None:
        """The best genome (slot -> tree string), ``None`` before any training."""
        return None if self.state.best is None else dict(self.state.best["genome"])

    @property
    def fitness(self) -> float | None:
        """The best proxy fitness (the task's target metric on its validation split)."""
        return None if self.state.best is None else float(self.state.best["fitness"])

    def leaderboard(self, top: int = 10) -> list[dict[str, Any]]:
        """The ``top`` trained losses: rank, id, fitness, metrics, trees and formulas."""
        from gp_loss.results.report import leaderboard_json

        return leaderboard_json(self.directory, top)["leaderboard"]

    def load_loss(self) -> torch.nn.Module:
        """The best loss as a ``torch.nn.Module`` (``ModuleDict`` for several slots)."""
        from gp_loss.trees.loss_module import load_loss

        if self.state.best is None:
            raise GpLossError(f"{self.directory}: no loss trained yet, so there is no best loss")
        return load_loss(self.directory)

    def summary(self) -> str:
        """The text ``evolve`` prints at the end."""
        from gp_loss.results.summary import summary

        constant_one = RunSettings.from_json(_read_config(self.directory)).pipeline.constant_one
        return summary(self.directory, self.state, self.task, constant_one)

    def __repr__(self) -> str:
        best = "none" if self.fitness is None else f"{self.fitness:.4f}"
        return (
            f"SearchResult({str(self.directory)!r}, task={self.task.name!r}, explored={self.state.explored}, "
            f"trained={self.state.trained}, best {self.task.fitness_metric}={best}"
            f"{', interrupted' if self.interrupted else ''})"
        )


def _read_config(directory: Path) -> dict[str, Any]:
    from gp_loss.run.run_directory import RunDirectory

    return RunDirectory(directory).read_config()


def _seconds(budget: str | float | None) -> float | None:
    if budget is None or isinstance(budget, (int, float)):
        return None if budget is None else float(budget)
    return parse_budget(budget)


def run(search: Search, quiet: bool = False) -> SearchResult:
    """Run a started or resumed :class:`Search` to its limits; Ctrl-C stops it cleanly."""
    path = search.directory.path
    interrupted = False
    tracker = None
    if search.settings.tracking:
        from gp_loss.tracking.tracker import Tracker

        tracker = Tracker(path, search.settings.tracking)
        search.evolution.hooks.append(tracker)
    try:
        with search:
            search.run()
    except KeyboardInterrupt:
        interrupted = True
        if not quiet:
            print(
                f"\ninterrupted; continue with gp_loss.resume({str(path)!r}) or "
                f"`python cli.py evolve --resume --out {path}`",
                file=sys.stderr,
                flush=True,
            )
    finally:
        if tracker is not None:
            tracker.close(interrupted)
    return SearchResult(Path(path), search.evolution.task, search.evolution.state, interrupted)


def settings_from_keywords(task, limits: Limits, settings: dict[str, Any]) -> RunSettings:
    """Split :func:`search`'s keywords over the setting groups (gp_loss/core/settings.py): each
    field is reached by its declared keyword (``population``, like ``--population``) or by its
    own name (``population_size``)."""
    from dataclasses import fields

    from gp_loss.core.option import keywords

    targets = keywords(GROUPS)
    for group in GROUPS:
        targets.update({f.name: (group, f.name) for f in fields(group)})
    parts: dict[Any, dict[str, Any]] = {group: {} for group in GROUPS}
    run: dict[str, Any] = {}
    for key, value in settings.items():
        if key in ("torch_threads", "imports", "cache"):
            run[key] = value
        elif key in targets:
            group, name = targets[key]
            parts[group][name] = value
        else:
            known = ", ".join(sorted({*targets, "torch_threads", "imports", "cache"}))
            raise GpLossError(f"unknown search setting {key!r}; known: {known}")
    evolution = {**task.evolution_defaults(), **parts[EvolutionConfig]}
    if "imports" in run:
        run["imports"] = tuple(run["imports"])
    if run.get("cache") is not None:
        run["cache"] = str(run["cache"])
    tracking = {k: None if v is None else str(v) for k, v in parts[TrackingOptions].items()}
    return settings_for_task(
        task,
        pipeline=PipelineOptions(**parts[PipelineOptions]),
        evolution=EvolutionConfig(**evolution),
        limits=limits,
        execution=ExecutionOptions(**parts[ExecutionOptions]),
        tracking=TrackingOptions(**tracking),
        **run,
    )


def search(
    task,
    *,
    budget: str | float | None = None,
    out: str | Path | None = None,
    max_explored: int | None = None,
    max_trained: int | None = None,
    progress: bool = True,
    task_options: dict[str, Any] | None = None,
    **settings: Any,
) -> SearchResult:
    """Search a loss for ``task`` and return the :class:`SearchResult`.

    Args:
        task: a registered task's name (built with ``task_options``) or a task object, such as
            a :class:`tasks.generic.GenericTask` around your own model and data.
        budget: wall clock (``"90s"``, ``"10m"``, or seconds); without any limit, the task's
            ``default_budget``.
        out: the run directory (default: a fresh folder under ``runs/``).
        max_explored, max_trained: stop after this many explored losses / proxy trainings.
        progress: the one-line progress display on stderr.
        settings: what ``evolve``'s flags set, by field name: ``population``, ``tournament``,
            ``crossover``, ``replace``, ``random_search``, ``seed``, ``gec``, ``lrp``,
            ``lrp_protocol``, ``stop_invalid``, ``max_height``, ``max_nodes``, ``constant_one``,
            ``backend``, ``workers``, ``eval_timeout``, ``torch_threads``, ``cache`` (a path,
            ``"off"``; default: the persistent search cache in the cache folder)...
            ``seed`` seeds the evolution; the proxy trains with ``task_options["seed"]`` (0 by
            default), so searches with other seeds judge every loss alike.
            ``init``: ``"scratch"`` (the default), ``"baselines"`` (the initial population
            starts from the task's tree baselines and their mutants) or ``"cache"`` (from the
            best losses the search cache holds for the task, and their mutants).
            ``slot_search``: ``"auto"`` (the default: slot-wise for a multi-slot search from
            scratch where the task has a tree baseline, else joint), ``"joint"`` or
            ``"slotwise"`` (one slot at a time on the task's anchor, then jointly;
            ``slot_share``: the share of the budget spent slot by slot, 0.5).
            ``weight_mutation``: the share of children (multi-slot tasks) that change one
            slot's weight, 1, C or 10 (0.1).
            ``imports``: modules to import first, in this process and in every worker, where
            your own adapters and tasks register themselves (``evolve --import``); they are
            recorded in run.json, so ``resume``, ``export`` and ``load_loss`` import them too.
            ``tensorboard``: a folder; the search logs to ``tensorboard/<run name>``.
            ``mlflow``: a tracking URI (a server, ``sqlite:///runs.db``, a local folder); one
            MLflow run per search. Both need ``pip install -e '.[tracking]'``, log from a
            background thread, and go on after a resume where they left off.
    """
    from gp_loss.run.runner import start

    if isinstance(task, str):
        from tasks import get_task

        try:
            task = get_task(task, **(task_options or {}))
        except TypeError as err:
            raise GpLossError(f"bad option for task {task!r}: {err}") from None
    elif task_options:
        raise GpLossError("task_options go with a task name; a task object is already built")
    seconds = _seconds(budget)
    if seconds is None and max_explored is None and max_trained is None:
        seconds = parse_budget(task.default_budget)
    run_settings = settings_from_keywords(task, Limits(seconds, max_explored, max_trained), settings)
    found = start(run_settings, out, progress=progress, task=task)
    if progress:
        print(f"run directory: {found.directory.path}", file=sys.stderr, flush=True)
    return run(found, quiet=not progress)


def resume(
    out: str | Path,
    *,
    budget: str | float | None = None,
    max_explored: int | None = None,
    max_trained: int | None = None,
    progress: bool = True,
    task=None,
    **execution: Any,
) -> SearchResult:
    """Continue the run in ``out`` where it stopped; ``budget`` is time added to it.

    ``task``: the task object again, for runs started with one that cannot be rebuilt by name.
    ``execution``: ``backend``, ``workers``... for the rest of the run; ``tensorboard`` and
    ``mlflow`` replace where the run is tracked.
    """
    from gp_loss.run.runner import resume as resume_run

    tracking = {k: execution.pop(k) for k in ("tensorboard", "mlflow") if k in execution}

    found = resume_run(
        out,
        _seconds(budget),
        max_explored,
        max_trained,
        progress=progress,
        execution=execution or None,
        task=task,
        tracking=TrackingOptions(**tracking) if tracking else None,
    )
    return run(found, quiet=not progress)


def retrain(task, loss, seeds: int = 3, first_seed: int = 0):
    """Train ``task``'s final model with ``loss`` over ``seeds`` seeds; a
    :class:`gp_loss.results.final_training.TrainReport` (``.markdown()``, ``.to_json()``, ``.runs``).

    ``loss``: a baseline name of the task, a ``best.json`` path or run directory, or a
    :class:`SearchResult`.
    """
    from gp_loss.results.final_training import train

    spec = str(loss.directory) if isinstance(loss, SearchResult) else str(loss)
    return train(task, spec, seeds, first_seed)


@dataclass
class Comparison:
    """Losses retrained side by side with the same seeds (:func:`compare`)."""

    task: str
    metric: str
    runs: dict[str, list]  # label -> [SeedRun] in seed order
    split: str = "test"

    def to_json(self) -> dict[str, Any]:
        """Every seed's metrics and, per loss, mean, std and the paired difference to the first."""
        from dataclasses import asdict

        from gp_loss.results.final_training import summarise

        first = next(iter(self.runs))
        return {
            "task": self.task,
            "metric": self.metric,
            "split": self.split,
            "losses": {
                label: {
                    "summary": summarise(runs, [self.metric])[self.metric],
                    "paired_difference_to_" + first: self.paired_difference(first, label),
                    "runs": [asdict(r) for r in runs],
                }
                for label, runs in self.runs.items()
            },
        }

    def paired_difference(self, first: str, other: str) -> dict[str, float | int | None]:
        """Mean and std over seeds of (first - other), seeds where both trained."""
        import statistics

        pairs = [
            a.metrics[self.metric] - b.metrics[self.metric]
            for a, b in zip(self.runs[first], self.runs[other])
            if a.metrics is not None and b.metrics is not None
        ]
        return {
            "mean": statistics.mean(pairs) if pairs else None,
            "std": statistics.stdev(pairs) if len(pairs) > 1 else 0.0,
            "seeds": len(pairs),
        }

    def markdown(self) -> str:
        """One row per loss: mean +- std of the metric, and the first loss minus it, per seed."""
        from gp_loss.results.final_training import diverged_note, mean_std, summarise

        first = next(iter(self.runs))
        lines = [
            f"task {self.task}, {self.metric} on the {self.split} split over {len(self.runs[first])} seed(s), "
            "final models trained with the same seeds",
            "",
            f"| loss | {self.metric} | {first} minus it (paired) |",
            "|---|---:|---:|",
        ]
        for label, runs in self.runs.items():
            diff = self.paired_difference(first, label)
            cell = (
                "" if label == first or diff["mean"] is None else f"{diff['mean']:+.4f} +- {diff['std']:.4f}"
            )
            summary = mean_std(summarise(runs, [self.metric])[self.metric])
            lines.append(f"| {label}{diverged_note(runs)} | {summary} | {cell} |")
        return "\n".join(lines)


def compare(task, losses: dict[str, Any], seeds: int = 3, first_seed: int = 0) -> Comparison:
    """Retrain each loss (label -> baseline name, ``best.json`` path, run directory or
    :class:`SearchResult`) with the same seeds; the first is compared with each other one."""
    from gp_loss.results.retraining import retrain

    specs = [
        (label, str(loss.directory) if isinstance(loss, SearchResult) else str(loss))
        for label, loss in losses.items()
    ]
    runs = retrain(task, {}, specs, seeds, processes=False, first_seed=first_seed, what="compare")
    return Comparison(task.name, task.metric, runs, task.final_split)
