"""``bench paper``: the paper's tables in one command, found loss against every reference baseline.

For each task: a search from scratch at ``budget`` (or a given run), then its top finalists and
every reference baseline retrained at the final protocol over the same seeds
(:mod:`gp_loss.results.retraining`); the found loss is the finalist with the best mean target metric, as
``finalize`` picks it. One table per task, laid out like the paper's: a row per baseline plus the
found loss, a column per metric (x100, mean +- std), the found loss's 95% paired t interval and
verdict against each baseline, and the paper's own number for the same row where it reports one
(its data and models are not ours: ResNet-50 detectors and DeepLabv3+ on the real COCO and VOC).

Everything lands under ``out``: ``TASK/search`` (the run, resumed if it was cut short),
``TASK/paper.jsonl`` (every finished training), ``paper.md`` and ``paper.json``. Started again
after a kill it redoes only the unfinished search and trainings.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gp_loss.bench.timing import machine
from gp_loss.core.errors import GpLossError
from gp_loss.results.final_training import mean_std
from gp_loss.results.finalists import Finalists, Row, select_finalists
from gp_loss.results.retraining import TrainingLog, retrain, stderr_say

#: The numbers AutoLoss-Zero (arXiv 2103.14026) reports for the same rows, x100, for reference
#: only: ResNet-50 Faster/Mask R-CNN on COCO, SimpleBaseline on COCO keypoints, DeepLabv3+ on
#: VOC. ``found`` is the paper's searched loss. cls_digits is not in the paper.
PAPER_NUMBERS: dict[str, dict[str, dict[str, float]]] = {
    "det_coco": {"ce+iou": {"AP": 37.3}, "ce+giou": {"AP": 37.6}, "found": {"AP": 38.0}},
    "inst_coco": {
        "ce+smooth_l1+bce": {"mask_AP": 34.6},
        "ce+iou+bce": {"mask_AP": 34.4},
        "ce+giou+bce": {"mask_AP": 34.7},
        "found": {"mask_AP": 34.8},
    },
    "pose_coco": {"joints_mse": {"AP": 71.5}, "found": {"AP": 72.0}},
    "seg_voc": {
        "cross_entropy": {"FWIoU": 91.3, "gAcc": 95.2, "mAcc": 87.3, "BIoU": 70.6, "mIoU": 78.7, "BF1": 65.3},
        "wce": {"FWIoU": 85.6, "gAcc": 91.1, "mAcc": 92.6, "BIoU": 61.8, "mIoU": 69.6, "BF1": 37.6},
        "dice": {"FWIoU": 91.3, "gAcc": 95.1, "mAcc": 87.5, "BIoU": 69.9, "mIoU": 77.8, "BF1": 64.4},
        "lovasz": {"FWIoU": 91.8, "gAcc": 95.4, "mAcc": 88.6, "BIoU": 72.5, "mIoU": 79.7, "BF1": 66.7},
        "found": {"mIoU": 80.7},
    },
}
FOUND = "found"


@dataclass
class TaskTable:
    """One task's table: the retrained rows and where the found loss came from."""

    task: str
    table: Finalists
    run: str
    search_seconds: float
    retrain_seconds: float

    def found(self) -> Row | None:
        return self.table.winner

    def to_json(self) -> dict[str, Any]:
        winner = self.found()
        return {
            "task": self.task,
            "run": self.run,
            "search_seconds": self.search_seconds,
            "retrain_seconds": self.retrain_seconds,
            "found": None if winner is None else {"label": winner.label, "losses": winner.spec},
            "paper": PAPER_NUMBERS.get(self.task, {}),
            **self.table.to_json(),
        }

    def markdown(self) -> str:
        table, winner = self.table, self.found()
        paper = PAPER_NUMBERS.get(self.task, {})
        head = ["loss", *table.metrics, f"found - row on {table.metric} (95% paired)", "verdict"]
        if paper:
            head.append(f"paper's {table.metric}")
        lines = [
            f"### {self.task}",
            "",
            f"{table.seeds} seeds per row, metrics x100 on the final split, mean +- std; the found loss "
            f"is the best of {len(table.finalists)} finalist(s) of `{self.run}` "
            f"(search {self.search_seconds / 60:.1f} min, retraining {self.retrain_seconds / 60:.1f} min)",
            "",
            "| " + " | ".join(head) + " |",
            "|---|" + "---:|" * (len(head) - 2) + "---|",
        ]
        rows = ([winner] if winner else []) + table.baselines
        for row in rows:
            label = f"found ({row.label})" if row is winner else row.label
            cells = [label]
            for metric in table.metrics:
                cells.append(mean_std(row.summary(metric), 100, 1))
            if row is winner or winner is None:
                cells += ["", ""]
            else:
                diff = table.difference(winner, row, table.metric)
                span = "" if diff.low is None else f" [{100 * diff.low:+.1f}, {100 * diff.high:+.1f}]"
                cells += [f"{100 * diff.mean:+.1f}{span}", f"found {diff.verdict}"]
            if paper:
                value = paper.get(FOUND if row is winner else row.label, {}).get(table.metric)
                cells.append("" if value is None else f"{value:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        if winner is not None:
            lines.append("")
            lines += [f"- found, {slot}: `{tree}`" for slot, tree in winner.spec.items()]
        return "\n".join(lines)


@dataclass
class Paper:
    """Every task's table and the run's settings."""

    tables: list[TaskTable]
    seeds: int
    budget: str
    wall_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "budget": self.budget,
            "wall_seconds": self.wall_seconds,
            "machine": machine(),
            "tasks": [t.to_json() for t in self.tables],
        }

    def markdown(self) -> str:
        lines = [
            f"`bench paper`: {self.seeds} seeds, search budget {self.budget}, "
            f"{self.wall_seconds / 60:.1f} min in all; machine: {machine()}",
            "",
            "Our data and models are not the paper's (built-in digit scenes and stick figures, small "
            "CPU models); its numbers stand beside ours for reference only. Verdicts: the found loss "
            "beats / ties / loses against a row by the 95% paired t interval over the seeds.",
        ]
        for table in self.tables:
            lines += ["", table.markdown()]
        return "\n".join(lines)


def parse_runs(items: Sequence[str]) -> dict[str, str]:
    """``TASK=DIR`` items -> {task: dir}."""
    runs = {}
    for item in items:
        task, _, directory = item.partition("=")
        if not task or not directory:
            raise GpLossError(f"bad --run {item!r}; use TASK=DIR")
        runs[task] = directory
    return runs


def _search(task_name: str, directory: Path, budget: str | None, limits: Mapping[str, Any], options) -> None:
    """Run the search into ``directory``, or resume it there (a run cut short goes on to its
    budget; a finished one stops at once)."""
    import gp_loss

    if (directory / "run.json").exists():
        stderr_say(f"bench paper: {task_name}: resuming the search in {directory}")
        gp_loss.resume(directory, progress=False)
    else:
        stderr_say(f"bench paper: {task_name}: searching from scratch into {directory}")
        gp_loss.search(
            task_name, budget=budget, out=directory, progress=False, task_options=options, **limits
        )


def _search_seconds(directory: Path) -> float:
    """The search's own wall time, as its checkpoint counts it (0 where it has none)."""
    from gp_loss.run.run_directory import RunDirectory

    state = RunDirectory(directory).read_state()
    return 0.0 if state is None else float(state.elapsed)


def run(
    tasks: Sequence[str],
    out: str | Path,
    budget: str | None = None,
    seeds: int = 5,
    runs: Mapping[str, str] | None = None,
    top: int = 3,
    jobs: int = 1,
    options: Mapping[str, Any] | None = None,
    max_trained: int | None = None,
) -> Paper:
    """The table of each task in ``tasks`` (see the module docstring)."""
    from gp_loss.run.runlog import load_events
    from gp_loss.run.runner import RunSettings
    from gp_loss.run.runner import task_options as options_of
    from tasks import TASKS, get_task

    if seeds < 2 or top < 1 or jobs < 1:
        raise GpLossError(
            "bench paper needs --seeds of at least 2 (an interval), --top and --jobs of at least 1"
        )
    runs = dict(runs or {})
    tasks = [*tasks, *(t for t in runs if t not in tasks)]
    unknown = [t for t in [*tasks, *runs] if t not in TASKS]
    if unknown:
        raise GpLossError(f"unknown task {unknown[0]!r}; known: {', '.join(sorted(TASKS))}")
    for name, given in runs.items():  # bad input fails here, before any search or training
        if not (Path(given) / "run.json").exists() and not (Path(given) / "events.jsonl").exists():
            raise GpLossError(f"--run {name}={given}: no run there")
        searched = RunSettings.from_json(load_events(given)[0]).task
        if searched != name:
            raise GpLossError(f"--run {name}={given}: that run searched {searched!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    tables = []
    for name in tasks:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        if name in runs:
            directory = Path(runs[name])
        else:
            directory = folder / "search"
            limits = {} if max_trained is None else {"max_trained": max_trained}
            _search(name, directory, budget, limits, dict(options or {}))
        config, events = load_events(directory)
        settings = RunSettings.from_json(config)
        task_options = options_of(settings)
        task = get_task(name, **task_options)
        chosen = select_finalists(events, top)
        if not chosen:
            raise GpLossError(f"{directory}: no trained loss to retrain")
        rows = [Row(f"#{e['id']}", "finalist", dict(e["trees"]), e["id"], e["fitness"]) for e in chosen]
        names = [
            task.reference_baseline,
            *(n for n in sorted(task.reference_losses) if n != task.reference_baseline),
        ]
        rows += [Row(n, "baseline", n) for n in names]
        began = time.perf_counter()
        done = retrain(
            task,
            task_options,
            [(row.label, row.spec) for row in rows],
            seeds,
            jobs=jobs,
            processes=True,
            log=TrainingLog(folder / "paper.jsonl"),
            what=f"bench paper: {name}",
        )
        for row in rows:
            row.runs = done[row.label]
        table = Finalists(task.name, task.metric, list(task.metrics), seeds, rows)
        seconds = time.perf_counter() - began
        tables.append(TaskTable(name, table, str(directory), _search_seconds(directory), seconds))
    paper = Paper(tables, seeds, budget or "task default", time.perf_counter() - start)
    (out / "paper.md").write_text(paper.markdown() + "\n", encoding="utf-8")
    (out / "paper.json").write_text(
        json.dumps(paper.to_json(), indent=1, default=str) + "\n", encoding="utf-8"
    )
    print(f"bench paper: wrote {out / 'paper.md'} and {out / 'paper.json'}", file=sys.stderr, flush=True)
    return paper
