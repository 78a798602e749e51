"""``bench parallel``: explored and trained losses per minute with 1 and 2 workers (and, on a
GPU machine, proxy trainings per GPU-minute packing 1 vs 4 evaluations per GPU)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from gp_loss.bench.timing import machine
from gp_loss.core.settings import EvolutionConfig, ExecutionOptions
from gp_loss.engine.evolution import Limits
from gp_loss.engine.progress import format_seconds
from gp_loss.run.runner import RunSettings, start


def _race(variants: dict[str, RunSettings], budget: float, slice_seconds: float, root: Path) -> dict:
    searches = {
        name: start(s, root / f"v{i}", progress=False) for i, (name, s) in enumerate(variants.items())
    }
    spent = 0.0
    while spent < budget:
        spent += min(slice_seconds, budget - spent)
        for search in searches.values():
            search.settings.limits.budget = spent
            search.run()
    for search in searches.values():
        search.close()
    return {name: search.evolution.state for name, search in searches.items()}


def run(
    task_name: str = "cls_digits",
    budget: float = 60.0,
    slice_seconds: float = 20.0,
    seed: int = 0,
    gpu: bool = False,
    task_options: dict | None = None,
) -> str:
    """Markdown report; the variants run interleaved in slices, each alone on the machine."""
    root = Path(tempfile.mkdtemp(prefix="gp-loss-parallel-"))
    options = dict(task_options or {})

    def settings(workers: int, backend: str, gpus: float = 0.0, device: str = "cpu") -> RunSettings:
        return RunSettings(
            task_name,
            {**options, "device": device},
            evolution=EvolutionConfig(population_size=10, seed=seed),
            limits=Limits(budget=0.0),
            execution=ExecutionOptions(backend=backend, workers=workers, gpus_per_eval=gpus),
        )

    variants = {
        "serial, 1 worker": settings(1, "serial"),
        "process, 1 worker": settings(1, "process"),
        "process, 2 workers": settings(2, "process"),
    }
    lines = [
        f"task `{task_name}`, {format_seconds(budget)} per variant, interleaved in {format_seconds(slice_seconds)} "
        f"slices, population 10, seed {seed}; torch threads per worker = cores / workers",
        f"machine: {machine()}",
        "",
        "| variant | explored/min | trained/min | ratio explored vs 1 process worker | ratio trained |",
        "|---|---:|---:|---:|---:|",
    ]
    states = _race(variants, budget, slice_seconds, root)
    base = states["process, 1 worker"]
    for name, state in states.items():
        minutes = max(state.elapsed, 1e-9) / 60
        ratio_e = (state.explored / minutes) / max(base.explored / (max(base.elapsed, 1e-9) / 60), 1e-9)
        ratio_t = (state.trained / minutes) / max(base.trained / (max(base.elapsed, 1e-9) / 60), 1e-9)
        lines.append(
            f"| {name} | {state.explored / minutes:.1f} | {state.trained / minutes:.1f} | "
            f"{ratio_e:.2f}x | {ratio_t:.2f}x |"
        )
    if gpu:
        lines += ["", "GPU packing (proxy trainings per GPU-minute):", ""]
        if not torch.cuda.is_available():
            lines.append("no CUDA device here: not measured")
        else:
            packed = _race(
                {
                    "1 per GPU": settings(1, "process", 1.0, "cuda"),
                    "4 per GPU": settings(4, "process", 0.25, "cuda"),
                },
                budget,
                slice_seconds,
                root,
            )
            lines += ["| packing | trained per GPU-minute | explored per GPU-minute |", "|---|---:|---:|"]
            for name, state in packed.items():
                minutes = max(state.elapsed, 1e-9) / 60
                lines.append(f"| {name} | {state.trained / minutes:.1f} | {state.explored / minutes:.1f} |")
    return "\n".join(lines)
