"""``finalize``: retrain a run's best losses over seeds beside the task's baseline, and say
whether the winner is really better (docs/architecture.md section 3, "After the search").

The finalists are the run's top K distinct trained losses by proxy fitness (as the search ranks
them: proxy rung first, then fitness; genomes with the same gradient-equivalence key count
once). Each finalist and each baseline is trained at final fidelity (``task.final_evaluate``)
with the same seeds 0..N-1, so that results pair by seed; :mod:`gp_loss.results.stats` gives every
finalist's paired difference to every baseline with a 95% t interval. The winner is the
finalist with the best mean target metric; ``best.json`` then holds the winner's trees and the
table, with the verdict against the task's default baseline stated plainly.

Every finished training is appended to ``finalize.jsonl`` in the run directory (fsynced), keyed
by its losses, seed and task options: a finalize killed at any moment and run again redoes only
the trainings that had not finished.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.results.final_training import LossSpec, SeedRun, mean_std
from gp_loss.results.retraining import TrainingLog, retrain, stderr_say, training_key
from gp_loss.results.stats import PairedDifference, paired_difference
from gp_loss.run import runlock
from gp_loss.trees.best_json import BestLoss, SlotLoss, read_best, write_best

LOG = "finalize.jsonl"


@dataclass
class Row:
    """A finalist or a baseline, and its trainings (one per seed, in seed order).

    Attributes:
        label: ``#<event id>`` for a finalist, the baseline's name otherwise.
        kind: ``finalist`` or ``baseline``.
        spec: the trees (slot -> tree) or the baseline's name.
        event: the finalist's event id in the run.
        proxy: the finalist's proxy fitness.
    """

    label: str
    kind: str
    spec: LossSpec
    event: int | None = None
    proxy: float | None = None
    runs: list[SeedRun] = field(default_factory=list)

    def key(self, task_options: Mapping[str, Any]) -> str:
        """What identifies this row's trainings in the log (:func:`gp_loss.results.retraining.training_key`)."""
        return training_key(self.spec, task_options)

    def values(self, metric: str) -> list[float | None]:
        """``metric`` per seed (``None`` where the training diverged)."""
        return [None if r.metrics is None else r.metrics[metric] for r in self.runs]

    def summary(self, metric: str) -> dict[str, Any]:
        """mean, std and the number of seeds that trained."""
        values = [v for v in self.values(metric) if v is not None]
        return {
            "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "trained": len(values),
        }


@dataclass
class Finalists:
    """The finalize table: every row's trainings and the paired comparisons."""

    task: str
    metric: str
    metrics: list[str]
    seeds: int
    rows: list[Row]
    level: float = 0.95

    @property
    def finalists(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "finalist"]

    @property
    def baselines(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "baseline"]

    def difference(self, row: Row, baseline: Row, metric: str) -> PairedDifference:
        """``row`` - ``baseline`` on ``metric``, paired by seed."""
        return paired_difference(row.values(metric), baseline.values(metric), self.level)

    @property
    def winner(self) -> Row | None:
        """The finalist with the best mean target metric (``None`` if none trained)."""
        trained = [r for r in self.finalists if r.summary(self.metric)["mean"] is not None]
        return max(trained, key=lambda r: r.summary(self.metric)["mean"], default=None)

    def verdicts(self) -> list[dict[str, Any]]:
        """The winner against each baseline on the target metric, the default baseline first."""
        winner = self.winner
        if winner is None:
            return []
        out = []
        for baseline in self.baselines:
            diff = self.difference(winner, baseline, self.metric)
            out.append(
                {
                    "winner": winner.label,
                    "baseline": baseline.label,
                    "metric": self.metric,
                    **diff.to_json(),
                    "statement": statement(winner.label, baseline.label, self.metric, diff),
                }
            )
        return out

    def verdict(self) -> dict[str, Any] | None:
        """The winner against the default baseline (the first) on the target metric."""
        verdicts = self.verdicts()
        return verdicts[0] if verdicts else None

    def to_json(self) -> dict[str, Any]:
        """The table as ``best.json`` records it."""
        verdicts = self.verdicts()  # the first is :meth:`verdict`
        rows = []
        for row in self.rows:
            entry: dict[str, Any] = {
                "label": row.label,
                "kind": row.kind,
                "losses": row.spec,
                "summary": {m: row.summary(m) for m in self.metrics},
                "runs": [asdict(r) for r in row.runs],
            }
            if row.kind == "finalist":
                entry.update(event=row.event, proxy_fitness=row.proxy)
                entry["vs"] = {
                    b.label: {m: self.difference(row, b, m).to_json() for m in self.metrics}
                    for b in self.baselines
                }
            rows.append(entry)
        return {
            "metric": self.metric,
            "seeds": self.seeds,
            "interval": f"{self.level:.0%} paired t interval over seeds",
            "rows": rows,
            "verdict": verdicts[0] if verdicts else None,
            "verdicts": verdicts,
        }

    def markdown(self) -> str:
        """The table (metrics x100) and the verdict, as ``finalize`` and ``show`` print it."""
        return finalists_markdown(self.to_json(), self.metrics)


def statement(winner: str, baseline: str, metric: str, diff: PairedDifference) -> str:
    """The verdict in one sentence."""
    if diff.verdict == "undetermined":
        return f"{winner} vs {baseline} on {metric}: {100 * diff.mean:+.1f} over {diff.n} seed(s); undetermined (needs 2 seeds)"
    span = f"{100 * diff.mean:+.1f} [{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]"
    words = {"beats": "beats", "ties": "ties with", "loses": "loses to"}[diff.verdict]
    return (
        f"{winner} {words} {baseline} on {metric}: {span} (x100, 95% paired t interval over {diff.n} seeds)"
    )


def finalists_markdown(table: Mapping[str, Any], metrics: Sequence[str] | None = None) -> str:
    """Markdown of a finalists table as ``best.json`` stores it (``show`` reads it from there)."""
    rows = table["rows"]
    metrics = list(metrics or rows[0]["summary"])
    baselines = [r["label"] for r in rows if r["kind"] == "baseline"]
    head = ["loss", "proxy", *metrics, *(f"{table['metric']} vs {b}" for b in baselines)]
    lines = [
        f"finalists: {table['seeds']} seed(s) each, metrics x100 on the final split, mean +- std; {table['interval']}",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    for row in rows:
        cells = [row["label"], "" if row.get("proxy_fitness") is None else f"{row['proxy_fitness']:.3f}"]
        for metric in metrics:
            cells.append(mean_std(row["summary"][metric], 100, 1))
        cells += [_difference_cell(row.get("vs", {}).get(b, {}).get(table["metric"])) for b in baselines]
        lines.append("| " + " | ".join(cells) + " |")
    for row in rows:
        if row["kind"] == "finalist":
            lines.append(f"- {row['label']}: " + "; ".join(f"{s}: `{t}`" for s, t in row["losses"].items()))
    if table.get("verdict"):
        lines += ["", f"**verdict: {table['verdict']['statement']}**"]
        # the winner against the baselines named beside the default one
        lines += [f"- also: {v['statement']}" for v in table.get("verdicts", [])[1:]]
    return "\n".join(lines)


def _difference_cell(diff: Mapping[str, Any] | None) -> str:
    """A paired difference (x100) with its interval and verdict, as one table cell."""
    if diff is None:
        return ""
    if diff["low"] is None:
        return f"{100 * diff['mean']:+.1f} ({diff['verdict']})"
    return (
        f"{100 * diff['mean']:+.1f} [{100 * diff['low']:+.1f}, {100 * diff['high']:+.1f}] {diff['verdict']}"
    )


def select_finalists(events: Sequence[Mapping[str, Any]], top: int) -> list[Mapping[str, Any]]:
    """The ``top`` distinct trained events, best first: proxy rung reached, then fitness; a genome
    seen before (same trees, or the same gradient-equivalence key) is left out."""
    from gp_loss.run.runlog import ranked

    chosen, seen = [], set()
    for event in ranked(list(events)):
        keys = {json.dumps(event["trees"], sort_keys=True)} | (
            {event["gec_key"]} if event.get("gec_key") else set()
        )
        if keys & seen:
            continue
        seen |= keys
        chosen.append(event)
        if len(chosen) == top:
            break
    return chosen


def finalize(
    run: str | os.PathLike,
    *,
    top: int = 3,
    seeds: int = 3,
    baselines: Sequence[str] = (),
    jobs: int = 1,
    task_options: Mapping[str, Any] | None = None,
    task=None,
    quiet: bool = False,
) -> Finalists:
    """Retrain the ``top`` losses of ``run`` and the baselines over ``seeds`` seeds; record the
    table and the verdict in the run's ``best.json``.

    Args:
        run: the run directory.
        top: finalists (distinct losses, best proxy fitness first).
        seeds: trainings per loss, seeds 0..N-1, the same for every row.
        baselines: baseline names to train beside the task's default baseline.
        jobs: trainings at a time (several: spawned processes with one torch thread each).
        task_options: task settings that differ from the run's (``final_steps=...``).
        task: the task object, for a run whose task cannot be rebuilt by name.
        quiet: no progress on stderr.
    """
    from gp_loss.run.runlog import load_events

    if top < 1 or seeds < 1:
        raise GpLossError("finalize needs --top and --seeds of at least 1")
    directory = Path(run)
    config, events = load_events(directory)
    runlock.acquire(directory)  # finalize writes best.json and its log: no search may run beside it
    try:
        return _finalize(directory, config, events, top, seeds, baselines, jobs, task_options, task, quiet)
    finally:
        runlock.release(directory)


def finalize_within(
    run: str | os.PathLike,
    seconds: float,
    *,
    top: int = 3,
    max_seeds: int = 3,
    jobs: int = 1,
    quiet: bool = False,
    clock=time.monotonic,
) -> Finalists:
    """:func:`finalize` seed round by seed round (every finalist and the default baseline with
    seed 0, then seed 1, ...) while the next round still fits in ``seconds``, judged by the
    round just run; the first round always runs. At most ``max_seeds`` rounds. Trainings
    already in the run's log count at no cost, so a killed run resumes where it stopped."""
    start = clock()
    table = None
    for seeds in range(1, max_seeds + 1):
        began = clock()
        table = finalize(run, top=top, seeds=seeds, jobs=jobs, quiet=quiet)
        if seeds < max_seeds and clock() + (clock() - began) - start > seconds:
            if not quiet:
                stderr_say(f"finalize: {seeds} seed round(s) fit in {seconds:.0f} s; stopping there")
            break
    return table


def _finalize(directory, config, events, top, seeds, baselines, jobs, task_options, task, quiet) -> Finalists:
    from gp_loss.run.runner import RunSettings, build_task
    from gp_loss.run.runner import task_options as options_of

    settings = RunSettings.from_json(config)
    settings.task_options.update(task_options or {})
    if task is None:
        if settings.task_object:
            raise GpLossError(
                f"{directory}: its task is a Python object; finalize it with gp_loss.finalize(run, task=...)"
            )
        task = build_task(settings)
    chosen = select_finalists(events, top)
    if not chosen:
        raise GpLossError(f"{directory}: no trained loss to finalize yet")
    names = [task.reference_baseline, *(b for b in baselines if b != task.reference_baseline)]
    rows = [Row(f"#{e['id']}", "finalist", dict(e["trees"]), e["id"], e["fitness"]) for e in chosen]
    rows += [Row(name, "baseline", name) for name in names]
    if settings.task_object and jobs > 1:
        jobs = 1  # a task object cannot be rebuilt by name in job processes
    runs = retrain(
        task,
        options_of(settings),
        [(row.label, row.spec) for row in rows],
        seeds,
        jobs=jobs,
        imports=settings.imports,
        log=TrainingLog(directory / LOG),
        say=None if quiet else stderr_say,
        what=f"finalize {directory}",
    )
    for row in rows:
        row.runs = runs[row.label]
    table = Finalists(task.name, task.metric, list(task.metrics), seeds, rows)
    _record(directory, table, chosen)
    return table


def _record(directory: Path, table: Finalists, chosen: Sequence[Mapping[str, Any]]) -> None:
    """``best.json`` becomes the winner's, with the finalists' table and the verdict."""
    winner = table.winner
    best_path = directory / "best.json"
    if winner is None or not best_path.exists():
        return
    best = read_best(best_path)
    event = next(e for e in chosen if e["id"] == winner.event)
    slots = {
        name: SlotLoss(event["trees"][name], entry.adapter, entry.options)
        for name, entry in best.slots.items()
    }
    extra = {k: v for k, v in best.extra.items() if k not in ("id", "metrics", "finalists")}
    extra.update(id=event["id"], metrics=event.get("metrics", {}), finalists=table.to_json())
    write_best(best_path, BestLoss(best.task, best.metric, event["fitness"], slots, extra))
