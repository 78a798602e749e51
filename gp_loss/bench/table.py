"""``bench table``: the paper's results table; rows are losses, columns the task's metrics.

Each (loss, seed) retraining is one job (``task.final_evaluate``), spread over spawned worker
processes with one torch thread each; cells are mean +- std over the seeds on the test split.
Each finished training prints one progress line on stderr.
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import torch

from gp_loss.bench.timing import machine
from gp_loss.errors import GpLossError


def parse_rows(specs: tuple[str, ...]) -> list[tuple[str, str]]:
    """``LABEL=SPEC`` or ``SPEC`` (labelled by itself) -> [(label, spec)]."""
    rows = []
    for item in specs:
        label, _, spec = item.partition("=") if "=" in item else (item, "", item)
        if not label or not spec:
            raise GpLossError(f"bad --loss {item!r}; use SPEC or LABEL=SPEC")
        rows.append((label, spec))
    return rows


def _job(task_name: str, options: dict, spec: str, seed: int) -> tuple[dict[str, float], float]:
    from gp_loss.train import resolve_losses
    from tasks import get_task

    torch.set_num_threads(1)
    task = get_task(task_name, **options)
    _, losses = resolve_losses(task, spec)
    start = time.perf_counter()
    metrics = task.final_evaluate(losses, seed=seed)
    return metrics, time.perf_counter() - start


def run(task_name: str, rows: list[tuple[str, str]], seeds: int = 3, jobs: int = 1, options=None) -> str:
    """Train every row with seeds 0..seeds-1; a Markdown table of mean +- std per metric."""
    from gp_loss.train import resolve_losses
    from tasks import get_task

    options = dict(options or {})
    task = get_task(task_name, **options)
    for _, spec in rows:  # bad specs fail here, before any training
        resolve_losses(task, spec)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {
            (label, seed): pool.submit(_job, task_name, options, spec, seed)
            for label, spec in rows
            for seed in range(seeds)
        }
        results = {}
        keys = {future: key for key, future in futures.items()}
        for done, future in enumerate(as_completed(keys), 1):
            label, seed = keys[future]
            results[label, seed] = metrics, seconds = future.result()
            headline = ", ".join(f"{k} {v:.3f}" for k, v in list(metrics.items())[:2])
            print(
                f"[{done}/{len(futures)}] {label}, seed {seed}: {headline} ({seconds:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - start
    metrics = list(task.metrics)
    lines = [
        f"task `{task.name}`, {seeds} seed(s) per row, metrics (x100) on the final test split, "
        f"mean +- std; {jobs} job(s) in parallel, 1 torch thread each; {wall / 60:.1f} min in all",
        f"machine: {machine()}",
        "",
        "| loss | " + " | ".join(metrics) + " | s per training |",
        "|---|" + "---:|" * (len(metrics) + 1),
    ]
    for label, _ in rows:
        runs = [results[label, seed] for seed in range(seeds)]
        cells = []
        for metric in metrics:
            values = [100 * r[0][metric] for r in runs]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} +- {std:.1f}")
        seconds = statistics.mean(r[1] for r in runs)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {seconds:.0f} |")
    return "\n".join(lines)
