"""``bench slots``: slot-wise against joint search on a multi-slot task, side by side.

Two searches with the same seed, population and wall-clock budget, one after the other on the
same machine, without the search cache: ``--slot-search joint`` (every slot of a genome drawn and evolved at once) and
``--slot-search slotwise`` (gp_loss/engine/slotwise.py). For each: the draws it took to fill its
first population (explored candidates before the first evolved one), for slot-wise also each
slot's, the proxy trainings per minute, the outcomes, and the best proxy fitness found.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from gp_loss.bench.timing import machine
from gp_loss.core.settings import EvolutionConfig
from gp_loss.engine.evolution import Limits
from gp_loss.engine.progress import format_seconds
from gp_loss.run.runner import RunSettings, start


def draws_to_fill(events: list[dict[str, Any]]) -> dict[str, int | None]:
    """Per population (``all`` for a joint search, ``slot:<name>`` for each slot of a
    slot-wise one): the candidates it explored before its first evolved child (``None``: never
    filled). The anchor counts for every slot; a joint phase after the slots starts full."""
    drawn: dict[str, int] = {}
    filled: dict[str, int | None] = {}
    for event in events:
        searched = event.get("searched")
        if event.get("phase") == "anchor":
            continue
        key = "all" if searched is None or len(searched) != 1 else f"slot:{searched[0]}"
        if key == "all" and any(k.startswith("slot:") for k in filled):
            continue  # the joint phase of a slot-wise search
        filled.setdefault(key, None)
        if event.get("phase") == "evolve":
            if filled[key] is None:
                filled[key] = drawn.get(key, 0)
        else:
            drawn[key] = drawn.get(key, 0) + 1
    return filled


def run(
    task_name: str,
    budget: float | None,
    seed: int = 0,
    population: int | None = None,
    out: str | Path | None = None,
    task_options: dict[str, Any] | None = None,
    max_explored: int | None = None,
) -> str:
    """Search ``task_name`` jointly, then slot-wise, ``budget`` seconds (or ``max_explored``
    candidates) each; a Markdown report."""
    from tasks import TASKS

    population = population or TASKS[task_name].default_population
    root = Path(out or tempfile.mkdtemp(prefix="gp-loss-slots-"))
    rows = []
    for mode in ("joint", "slotwise"):
        settings = RunSettings(
            task_name,
            dict(task_options or {}),
            evolution=EvolutionConfig(population_size=population, seed=seed, slot_search=mode),
            limits=Limits(budget=budget, max_explored=max_explored),
            cache="off",  # the second search must not reuse what the first one judged
        )
        with start(settings, root / mode, progress=False) as search:
            state = search.run()
        lines = (root / mode / "events.jsonl").read_text(encoding="utf-8").splitlines()
        events = [json.loads(line) for line in lines]
        rows.append((mode, state, draws_to_fill(events)))
    limit = f"{format_seconds(budget)} of wall clock" if budget else f"{max_explored} candidates"
    text = [
        f"task `{task_name}`, {limit} per mode, one after the other, "
        f"population {population}, seed {seed}, serial backend, no search cache",
        f"machine: {machine()}",
        "",
        "| search | explored | draws to fill the first population | per slot | proxy trainings "
        "| trainings/min | outcomes | best fitness |",
        "|---|---:|---:|---|---:|---:|---|---:|",
    ]
    for mode, state, filled in rows:
        first = next(iter(filled.values()), None)
        per_slot = ", ".join(f"{k[5:]} {'-' if v is None else v}" for k, v in filled.items() if k != "all")
        per_minute = state.trained / max(state.elapsed / 60, 1e-9)
        text.append(
            f"| {mode} | {state.explored} | {'-' if first is None else first} | {per_slot or '-'} | "
            f"{state.trained} | {per_minute:.1f} | {state.outcomes()} | {state.best_fitness()} |"
        )
    text += ["", f"run directories: {root}"]
    return "\n".join(text)
