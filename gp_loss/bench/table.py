"""``bench table``: the paper's results table; rows are losses, columns the task's metrics.

Each (loss, seed) retraining is one job (``task.final_evaluate``), spread over spawned worker
processes with one torch thread each; cells are mean +- std over the seeds on the test split. A
diverged training is marked as such and left out of the mean, never counted as 0. Each finished
training prints one progress line on stderr.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from gp_loss.bench.timing import machine
from gp_loss.core.errors import GpLossError
from gp_loss.results.final_training import SeedRun, diverged_note, mean_std, summarise
from gp_loss.results.retraining import retrain


def parse_rows(specs: tuple[str, ...]) -> list[tuple[str, str]]:
    """``LABEL=SPEC`` or ``SPEC`` (labelled by itself) -> [(label, spec)]."""
    rows = []
    for item in specs:
        label, _, spec = item.partition("=") if "=" in item else (item, "", item)
        if not label or not spec:
            raise GpLossError(f"bad --loss {item!r}; use SPEC or LABEL=SPEC")
        rows.append((label, spec))
    return rows


@dataclass
class Table:
    """The measured table: every (row, seed) training and the setting it ran in."""

    task: str
    metrics: list[str]
    rows: list[tuple[str, str]]
    runs: dict[str, list[SeedRun]]
    seeds: int
    jobs: int
    wall_seconds: float

    def to_json(self) -> dict[str, Any]:
        """One JSON document (``bench table --json``); metrics as the task reports them (0-1)."""
        return {
            "task": self.task,
            "split": "test",
            "seeds": self.seeds,
            "jobs": self.jobs,
            "wall_seconds": self.wall_seconds,
            "machine": machine(),
            "rows": [
                {
                    "label": label,
                    "loss": spec,
                    "summary": summarise(self.runs[label], self.metrics),
                    "runs": [asdict(r) for r in self.runs[label]],
                }
                for label, spec in self.rows
            ],
        }

    def markdown(self) -> str:
        """Rows are losses, columns the metrics (x100), mean +- std over the seeds that trained."""
        lines = [
            f"task `{self.task}`, {self.seeds} seed(s) per row, metrics (x100) on the final test split, "
            f"mean +- std; {self.jobs} job(s) in parallel, 1 torch thread each; "
            f"{self.wall_seconds / 60:.1f} min in all",
            f"machine: {machine()}",
            "",
            "| loss | " + " | ".join(self.metrics) + " | s per training |",
            "|---|" + "---:|" * (len(self.metrics) + 1),
        ]
        for label, _ in self.rows:
            runs = self.runs[label]
            summary = summarise(runs, self.metrics)
            cells = [mean_std(summary[m], 100, 1) for m in self.metrics]
            seconds = statistics.mean(r.seconds for r in runs)
            lines.append(f"| {label}{diverged_note(runs)} | " + " | ".join(cells) + f" | {seconds:.0f} |")
        return "\n".join(lines)


def run(
    task_name: str,
    rows: list[tuple[str, str]],
    seeds: int = 3,
    jobs: int = 1,
    options=None,
    imports: tuple[str, ...] = (),
) -> Table:
    """Train every row with seeds 0..seeds-1, ``jobs`` trainings at a time (``imports``: modules
    that register a user's task, imported again in each job process)."""
    from tasks import get_task

    options = dict(options or {})
    task = get_task(task_name, **options)
    start = time.perf_counter()
    # in job processes even one at a time: every row trains with one torch thread
    runs = retrain(task, options, rows, seeds, jobs=jobs, imports=imports, processes=True, what="bench table")
    return Table(task.name, list(task.metrics), rows, runs, seeds, jobs, time.perf_counter() - start)
