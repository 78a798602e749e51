"""``bench efficiency``: the paper's search-efficiency ablation, measured side by side.

Seven searches with the same seed and the same wall-clock budget each: naive evolution (every
candidate that passes the static checks is proxy-trained), + LRP, + GEC, + stop-invalid (one
full proxy training each, with the default shared LRP protocol), + the task's multi-fidelity
rungs (the full pipeline, the default), the full pipeline with the paper's LRP protocol
instead, and random search with the full pipeline. They run interleaved in short time
slices (resuming each in turn), so that machine noise hits all of them alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from gp_loss.bench.timing import machine
from gp_loss.core.settings import EvolutionConfig, PipelineOptions
from gp_loss.engine.evolution import Limits
from gp_loss.engine.progress import format_seconds
from gp_loss.run.runner import RunSettings, start

ONE_RUNG = (1.0,)
VARIANTS: dict[str, tuple[PipelineOptions, bool]] = {
    "naive evolution": (PipelineOptions(gec=False, lrp=False, stop_invalid=False, rungs=ONE_RUNG), False),
    "+ LRP": (PipelineOptions(gec=False, lrp=True, stop_invalid=False, rungs=ONE_RUNG), False),
    "+ LRP + GEC": (PipelineOptions(gec=True, lrp=True, stop_invalid=False, rungs=ONE_RUNG), False),
    "+ LRP + GEC + stop-invalid": (PipelineOptions(rungs=ONE_RUNG), False),
    "+ rungs (the full pipeline)": (PipelineOptions(), False),
    "the same with the paper's LRP": (PipelineOptions(lrp_protocol="paper"), False),
    "random search (full pipeline)": (PipelineOptions(), True),
}


def run(
    task_name: str,
    budget: float,
    slice_seconds: float = 15.0,
    seed: int = 0,
    population: int | None = None,
    out: str | Path | None = None,
) -> str:
    """Run the variants for ``budget`` seconds each (``population``: the task's default when
    ``None``); returns a Markdown report."""
    from tasks import TASKS

    population = population or TASKS[task_name].default_population
    root = Path(out or tempfile.mkdtemp(prefix="gp-loss-efficiency-"))
    searches = {}
    for i, (name, (options, random_search)) in enumerate(VARIANTS.items()):
        settings = RunSettings(
            task_name,
            pipeline=options,
            evolution=EvolutionConfig(population_size=population, seed=seed, random_search=random_search),
            limits=Limits(budget=0.0),
        )
        searches[name] = start(settings, root / f"variant{i}", progress=False)
    spent = 0.0
    while spent < budget:
        step = min(slice_seconds, budget - spent)
        spent += step
        for search in searches.values():
            search.settings.limits.budget = spent
            search.run()
    for search in searches.values():
        search.close()
    naive = searches["naive evolution"].evolution.state
    naive_rate = naive.explored / max(naive.elapsed, 1e-9)
    lines = [
        f"task `{task_name}`, {format_seconds(budget)} of wall clock per variant, interleaved in "
        f"{format_seconds(slice_seconds)} slices, population {population}, seed {seed}, 1 torch thread",
        f"machine: {machine()}",
        "",
        "| variant | explored | explored/s | speed-up vs naive | proxy trainings | outcomes | best fitness |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for name, search in searches.items():
        state = search.evolution.state
        rate = state.explored / max(state.elapsed, 1e-9)
        lines.append(
            f"| {name} | {state.explored} | {rate:.2f} | {rate / naive_rate:.1f}x | {state.trained} | "
            f"{state.outcomes()} | {state.best_fitness()} |"
        )
    lines += ["", f"run directories: {root}"]
    return "\n".join(lines)
