"""``bench lrp --against-training N``: does passing the Loss-Rejection Protocol predict training?

For every slot, a seeded panel: the known-good losses, the known-bad ones, and random trees
drawn until each protocol (``shared`` and ``paper``) has ``N`` random passers and ``N`` random
rejects. Every distinct tree of the panel is proxy-trained exactly as the search trains it (the
other slots keep the task's default baseline), and a loss *trains* when its proxy fitness
reaches ``fraction`` of the default baseline's. Per protocol and slot it reports precision
(random passers that train), recall on the known-good losses, known-bad losses let through,
random rejects that would have trained, and the screening cost per candidate.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from gp_loss.bench.lrp import VERDICT, known_panel
from gp_loss.bench.timing import machine
from gp_loss.core.events import TRAINED
from gp_loss.core.settings import PROTOCOLS
from gp_loss.execution.spawn import spawn_pool
from gp_loss.fitness.candidate import Candidate
from gp_loss.fitness.probe import probe_batch, probe_gradient
from gp_loss.fitness.stages import LossRejection, ProxyTraining
from gp_loss.trees.loss_module import TreeLoss
from gp_loss.trees.space import random_tree, tree_inputs

#: Random draws per slot before the panel gives up looking for passers.
MAX_DRAWS = 20000


@dataclass
class PanelEntry:
    """One tree of a slot's panel with each protocol's verdict and, once trained, its fitness."""

    slot: str
    kind: str  # good, bad, random
    label: str
    tree: str
    verdicts: dict[str, str] = field(default_factory=dict)  # protocol -> pass/reject/invalid
    gains: dict[str, float | None] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)
    fitness: float | None = None


def _judge(lrps: Mapping[str, LossRejection], entry: PanelEntry, slot) -> None:
    loss = TreeLoss.for_slot(slot, entry.tree, True)  # baselines may use one
    for protocol, lrp in lrps.items():
        start = time.perf_counter()
        outcome, entry.gains[protocol], _ = lrp.judge(loss, entry.slot)
        entry.verdicts[protocol] = VERDICT[outcome]
        entry.ms[protocol] = (time.perf_counter() - start) * 1e3


@dataclass
class Panel:
    """The panel's entries, and the screening time of every random draw judged on the way
    (``(protocol, slot)`` -> milliseconds): what LRP costs a search per random candidate."""

    entries: list[PanelEntry]
    draw_ms: dict[tuple[str, str], list[float]]


def build_panel(task, n: int, seed: int = 0) -> Panel:
    """The known losses and ``n`` random passers and rejects per protocol, for every slot."""
    draw_ms: dict[tuple[str, str], list[float]] = {}
    lrps = {p: LossRejection(ProxyTraining(task), task, protocol=p) for p in PROTOCOLS}
    random.seed(seed)  # DEAP's generators draw from the random module
    entries: list[PanelEntry] = []
    for slot in task.slots:
        signature = slot.signature()
        batch = probe_batch(task, slot.name)
        for kind, label, tree in known_panel(task, slot):
            entry = PanelEntry(slot.name, kind, label, tree)
            _judge(lrps, entry, slot)
            entries.append(entry)
        wanted = {(p, v): n for p in PROTOCOLS for v in ("pass", "reject")}
        seen: set[str] = set()
        for _ in range(MAX_DRAWS):
            if not any(wanted.values()):
                break
            drawn = random_tree(signature, 1, 3)
            tree = str(drawn)
            if tree in seen or not all(group & tree_inputs(drawn) for group in signature.required_inputs):
                continue
            seen.add(tree)
            if not probe_gradient(TreeLoss.for_slot(slot, tree), batch.predictions, batch.targets).finite:
                continue  # the validity stage ends these before LRP
            entry = PanelEntry(slot.name, "random", "random tree", tree)
            _judge(lrps, entry, slot)
            for protocol, ms in entry.ms.items():
                draw_ms.setdefault((protocol, slot.name), []).append(ms)
            useful = [(p, v) for p, v in entry.verdicts.items() if wanted.get((p, v), 0) > 0]
            for key in useful:
                wanted[key] -= 1
            if useful:
                entries.append(entry)
    return Panel(entries, draw_ms)


def _train_job(task_name: str, options: dict, baseline: str, slot: str | None, tree: str | None) -> float:
    """Proxy fitness of the default baseline with ``slot`` (if any) replaced by ``tree``."""
    from gp_loss.results.final_training import resolve_losses
    from tasks import get_task

    torch.set_num_threads(1)
    task = get_task(task_name, **options)
    losses = dict(resolve_losses(task, baseline)[1])
    if slot is not None:
        losses[slot] = TreeLoss.for_slot(task.slot(slot), tree)
    # the search's own innermost stage, handed ready-made modules (hand-written baselines too)
    candidate = Candidate({s.name: "" for s in task.slots}, context={"losses": losses})
    try:
        return float(ProxyTraining(task)(candidate).fitness)
    except RuntimeError:  # a prediction-blind tree has no gradient: it trains nothing
        return task.worst_fitness()


def train_panel(task, task_options: dict, entries: list[PanelEntry], jobs: int = 1) -> float:
    """Proxy-train the default baseline and every distinct panel tree; returns the baseline's
    fitness and fills ``entry.fitness``."""
    baseline = task.reference_baseline
    work: list[tuple[str | None, str | None]] = [(None, None)]
    for entry in entries:
        if (entry.slot, entry.tree) not in work:
            work.append((entry.slot, entry.tree))
    results: dict[tuple[str | None, str | None], float] = {}
    start = time.perf_counter()
    with spawn_pool(jobs) as pool:
        futures = {key: pool.submit(_train_job, task.name, task_options, baseline, *key) for key in work}
        for done, (key, future) in enumerate(futures.items(), 1):
            results[key] = future.result()
            what = "baseline " + baseline if key[0] is None else f"{key[0]}: {key[1]}"
            print(
                f"[{done}/{len(work)}] {results[key]:.4f}  {what}  ({time.perf_counter() - start:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
    for entry in entries:
        entry.fitness = results[(entry.slot, entry.tree)]
    return results[(None, None)]


def _share(hits: int, total: int) -> str:
    return "n/a (0)" if total == 0 else f"{hits / total:.0%} ({hits}/{total})"


def report(task, panel: Panel, base_fitness: float, fraction: float, n: int, seed: int) -> str:
    """Markdown: the panel with verdicts and fitness, then precision and recall per protocol."""
    entries = panel.entries
    bar = fraction * base_fitness
    lines = [
        f"task `{task.name}`, target metric `{task.metric}`; default baseline `{task.reference_baseline}` "
        f"proxy fitness {base_fitness:.4f}; a loss trains when its proxy fitness >= {fraction:g} x "
        f"that = {bar:.4f}; {n} random passers and {n} random rejects per protocol and slot, seed {seed}",
        f"machine: {machine()}",
        "",
        "| slot | kind | loss | tree | shared g | shared | paper g | paper | proxy fitness | trains |",
        "|---|---|---|---|---:|---|---:|---|---:|---|",
    ]

    def g(entry: PanelEntry, p: str) -> str:
        value = entry.gains.get(p)
        return "-" if value is None else f"{value:+.3f}"

    for e in entries:
        trains = "yes" if e.fitness is not None and e.fitness >= bar else "no"
        lines.append(
            f"| {e.slot} | {e.kind} | {e.label} | `{e.tree}` | {g(e, 'shared')} | {e.verdicts['shared']} | "
            f"{g(e, 'paper')} | {e.verdicts['paper']} | {e.fitness:.4f} | {trains} |"
        )
    lines += [
        "",
        "| protocol | slot | precision (random passers that train) | recall (known-good passing) | "
        "known-bad passing | random rejects that train | ms per random candidate (mean) | "
        "ms per passer (median) |",
        "|---|---|---|---|---|---|---:|---:|",
    ]
    for p in PROTOCOLS:
        for slot in task.slots:
            mine = [e for e in entries if e.slot == slot.name]
            passers = [e for e in mine if e.kind == "random" and e.verdicts[p] == "pass"][:n]
            rejects = [e for e in mine if e.kind == "random" and e.verdicts[p] != "pass"][:n]
            good = [e for e in mine if e.kind == "good"]
            bad = [e for e in mine if e.kind == "bad"]
            drawn = panel.draw_ms.get((p, slot.name), [0.0])
            passing = [e.ms[p] for e in mine if e.verdicts[p] == "pass"] or [0.0]
            lines.append(
                f"| {p} | {slot.name} | {_share(sum(e.fitness >= bar for e in passers), len(passers))} | "
                f"{_share(sum(e.verdicts[p] == 'pass' for e in good), len(good))} | "
                f"{_share(sum(e.verdicts[p] == 'pass' for e in bad), len(bad))} | "
                f"{_share(sum(e.fitness >= bar for e in rejects), len(rejects))} | "
                f"{statistics.mean(drawn):.1f} | {statistics.median(passing):.1f} |"
            )
    return "\n".join(lines)


def run(task, task_options: dict, n: int, seed: int = 0, fraction: float = 0.5, jobs: int = 1) -> str:
    """Build, train and report the panel for ``task``."""
    torch.set_num_threads(1)
    panel = build_panel(task, n, seed)
    base = train_panel(task, task_options, panel.entries, jobs)
    return report(task, panel, base, fraction, n, seed)


def trained_share(runs: list[str], fraction: float = 0.5) -> str:
    """For each run directory: how many of its proxy trainings reached ``fraction`` of the
    default baseline's proxy fitness (trained once per task setting, as the search trains)."""
    import json
    from pathlib import Path

    from gp_loss.run.run_directory import RunDirectory
    from gp_loss.run.runner import RunSettings, build_task, task_options

    lines = [
        "| run | task | LRP protocol | baseline proxy fitness | trained | reaching "
        f"{fraction:g} x baseline | best proxy fitness | explored | draws to fill the population | "
        "LRP ms per screened candidate |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    baselines: dict[str, float] = {}
    for run in runs:
        path = Path(run)
        directory = RunDirectory(path)
        settings = RunSettings.from_json(directory.read_config())
        task = build_task(settings)
        options = task_options(settings)
        key = json.dumps([settings.task, options], sort_keys=True, default=str)
        if key not in baselines:
            baselines[key] = _train_job(settings.task, options, task.reference_baseline, None, None)
        base = baselines[key]
        events = directory.recover_events(directory.read_state())
        trained = [e for e in events if e["outcome"] == TRAINED]
        reaching = sum(e["fitness"] >= fraction * base for e in trained)
        best = max((e["fitness"] for e in trained), default=None)
        fill = next((e["id"] for e in events if e["phase"] == "evolve"), None)
        screened = [e["seconds"]["lrp"] * 1e3 for e in events if "lrp" in e["seconds"]]
        lines.append(
            f"| {path.name} | {settings.task} | {settings.pipeline.lrp_protocol} | {base:.4f} | "
            f"{len(trained)} | {_share(reaching, len(trained))} | "
            f"{'-' if best is None else f'{best:.4f}'} | {len(events)} | "
            f"{'not filled' if fill is None else fill} | "
            f"{statistics.mean(screened) if screened else 0.0:.1f} |"
        )
    return "\n".join(lines)
