"""``bench fidelity``: does the proxy rank losses the way full training does?

A fixed, seeded panel of losses (the task's baselines, random trees that pass the
Loss-Rejection Protocol, any ``best.json`` given) is proxy-trained exactly as the search trains
it, evaluated part-way at each fidelity level (one training, continued between levels), and
retrained at final fidelity over seeds. Kendall's tau and Spearman's rho between each level's
proxy metric and the final metric say how far the search can trust that level, beside what the
level costs. ``versus`` adds other proxies (task settings that only the proxy trainings take,
such as ``proxy=full``), measured in the same run against the same final retrainings, so that
their cost and ranking compare side by side.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

from gp_loss.bench.timing import machine
from gp_loss.core.errors import GpLossError
from gp_loss.core.events import TRAINED
from gp_loss.execution.spawn import spawn_pool
from gp_loss.fitness.rungs import rung_steps
from gp_loss.results.final_training import SeedRun, job_task, resolve_losses, train_seed

#: The label of the proxy the task's own settings give.
DEFAULT_PROXY = "default"
#: Give up drawing a slot's passing random tree after this many draws.
MAX_DRAWS = 20_000


@dataclass
class PanelLoss:
    """One loss of the panel: a baseline or ``best.json`` (``spec``) or random trees (``trees``)."""

    label: str
    kind: str  # baseline, random, given
    spec: str = ""
    trees: dict[str, str] = field(default_factory=dict)
    proxy: list[float | None] = field(default_factory=list)  # target metric at each level
    seconds: list[float] = field(default_factory=list)  # cumulative, at each level
    finals: list[SeedRun] = field(default_factory=list)
    #: the other proxies' measurements: label (``key=value,...``) -> {"proxy": [...], "seconds": [...]}
    versus: dict[str, dict[str, list]] = field(default_factory=dict)


def losses_of(task, entry: PanelLoss) -> dict:
    """The loss modules of a panel entry for ``task``."""
    from gp_loss.trees.loss_module import TreeLoss

    if entry.trees:
        return {slot.name: TreeLoss.for_slot(slot, entry.trees[slot.name]) for slot in task.slots}
    return resolve_losses(task, entry.spec)[1]


def random_passers(task, count: int, seed: int) -> list[dict[str, str]]:
    """``count`` genomes of random trees (depth 1-3) whose every slot passes the validity checks
    and the task's Loss-Rejection Protocol (``shared``), none Gradient-Equivalent to a baseline
    or to another, drawn with ``seed``."""
    from gp_loss.core.settings import PipelineOptions
    from gp_loss.fitness.candidate import Candidate
    from gp_loss.fitness.pipeline import FitnessPipeline

    pipeline = FitnessPipeline(task, PipelineOptions(constant_one=True))
    # a random loss that trains like a baseline or an earlier pick (same GEC key) adds a tie,
    # not information
    seen = {pipeline.gec.fingerprint(Candidate(dict(trees))) for trees in task.baselines.values()}
    rng_state = random.getstate()
    random.seed(seed)
    try:
        genomes: list[dict[str, str]] = []
        while len(genomes) < count:
            genome = {slot.name: _passing_tree(pipeline, slot) for slot in task.slots}
            key = pipeline.gec.fingerprint(Candidate(genome))
            if key not in seen:
                seen.add(key)
                genomes.append(genome)
        return genomes
    finally:
        random.setstate(rng_state)


def _passing_tree(pipeline, slot) -> str:
    """A random tree for ``slot`` that uses its required inputs, is finite on the probe batch
    and passes the Loss-Rejection Protocol."""
    from gp_loss.fitness.probe import probe_batch, probe_gradient
    from gp_loss.trees.loss_module import TreeLoss
    from gp_loss.trees.space import random_tree, tree_inputs

    signature = slot.signature()
    batch = probe_batch(pipeline.task, slot.name)
    for _ in range(MAX_DRAWS):
        tree = random_tree(signature, 1, 3)
        if not all(group & tree_inputs(tree) for group in signature.required_inputs):
            continue
        loss = TreeLoss.for_slot(slot, str(tree))
        if not probe_gradient(loss, batch.predictions, batch.targets).finite:
            continue
        if pipeline.lrp.verdict(loss, slot.name)[0] == "passed":
            return str(tree)
    raise GpLossError(f"no random tree passed LRP for slot {slot.name!r} in {MAX_DRAWS} draws")


def _proxy_job(task_name: str, options: dict, imports: tuple, entry: PanelLoss, steps: list[int]):
    task = job_task(task_name, options, imports)
    metrics, seconds = [], []
    start = time.perf_counter()
    for result in task.proxy_rungs(losses_of(task, entry), steps):
        metrics.append(result.metrics.get(task.metric) if result.outcome == TRAINED else None)
        seconds.append(time.perf_counter() - start)
    metrics += [None] * (len(steps) - len(metrics))  # diverged: no score at the later levels
    seconds += [seconds[-1] if seconds else 0.0] * (len(steps) - len(seconds))
    return metrics, seconds


def _final_job(task_name: str, options: dict, imports: tuple, entry: PanelLoss, seed: int) -> SeedRun:
    task = job_task(task_name, options, imports)
    return train_seed(task, losses_of(task, entry), seed)


@dataclass
class Fidelity:
    """The measured panel and the rank correlations per level."""

    task: str
    metric: str
    steps: list[int]
    panel: list[PanelLoss]
    seeds: int
    jobs: int
    wall_seconds: float
    #: each other proxy's levels in steps, by label
    versus_steps: dict[str, list[int]] = field(default_factory=dict)

    def final_mean(self, entry: PanelLoss) -> float:
        """Mean final metric over the seeds that trained; the worst (0) where none did."""
        values = [r.metrics[self.metric] for r in entry.finals if r.metrics is not None]
        return statistics.mean(values) if values else 0.0

    def _measured(self, entry: PanelLoss, proxy: str) -> tuple[list[float | None], list[float]]:
        if proxy == DEFAULT_PROXY:
            return entry.proxy, entry.seconds
        return entry.versus[proxy]["proxy"], entry.versus[proxy]["seconds"]

    def correlations(self) -> list[dict[str, Any]]:
        """Per proxy and level: steps, mean seconds, Kendall tau and Spearman rho (with
        p-values) between the proxy metric (diverged: 0, the search's worst fitness) and the
        final one."""
        from scipy.stats import kendalltau, spearmanr

        finals = [self.final_mean(e) for e in self.panel]
        rows = []
        levels = [(DEFAULT_PROXY, i, steps) for i, steps in enumerate(self.steps)]
        levels += [
            (label, i, steps)
            for label, all_steps in self.versus_steps.items()
            for i, steps in enumerate(all_steps)
        ]
        for label, i, steps in levels:
            measured = [self._measured(e, label) for e in self.panel]
            proxy = [values[i] if values[i] is not None else 0.0 for values, _ in measured]
            tau, rho = kendalltau(proxy, finals), spearmanr(proxy, finals)
            rows.append(
                {
                    "proxy": label,
                    "steps": steps,
                    "seconds": statistics.mean(seconds[i] for _, seconds in measured),
                    "kendall_tau": float(tau.statistic),
                    "kendall_p": float(tau.pvalue),
                    "spearman_rho": float(rho.statistic),
                    "spearman_p": float(rho.pvalue),
                }
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        """One JSON document (``bench fidelity --json``)."""
        return {
            "task": self.task,
            "metric": self.metric,
            "levels": self.steps,
            "versus_levels": self.versus_steps,
            "seeds": self.seeds,
            "machine": machine(),
            "wall_seconds": self.wall_seconds,
            "panel": [
                {
                    **{k: v for k, v in asdict(e).items() if k != "finals"},
                    "finals": [asdict(r) for r in e.finals],
                }
                for e in self.panel
            ],
            "correlations": self.correlations(),
        }

    def markdown(self) -> str:
        """The panel (proxy metric per level, final mean +- std) and the correlations per level."""
        from gp_loss.results.final_training import mean_std, summarise

        head = " | ".join(f"proxy @ {s}" for s in self.steps)
        for label, steps in self.versus_steps.items():
            head += " | " + " | ".join(f"{label} @ {s}" for s in steps)
        columns = len(self.steps) + sum(len(steps) for steps in self.versus_steps.values())
        lines = [
            f"task `{self.task}`, metric `{self.metric}`, {len(self.panel)} losses, proxy levels {self.steps} "
            f"steps (one training, continued between levels), final metric over {self.seeds} seed(s) on the "
            f"final split; {self.jobs} job(s), 1 torch thread each; {self.wall_seconds / 60:.1f} min in all",
            f"machine: {machine()}",
            "",
            f"| loss | kind | {head} | final (mean +- std) |",
            "|---|---|" + "---:|" * (columns + 1),
        ]
        for e in self.panel:
            values = e.proxy + [v for label in self.versus_steps for v in e.versus[label]["proxy"]]
            proxy = " | ".join("diverged" if v is None else f"{v:.4f}" for v in values)
            final = mean_std(summarise(e.finals, [self.metric])[self.metric])
            name = e.label if e.kind != "random" else f"`{'; '.join(e.trees.values())}`"
            lines.append(f"| {name} | {e.kind} | {proxy} | {final} |")
        lines += [
            "",
            "| proxy | level (steps) | s per proxy training to it | Kendall tau (p) | Spearman rho (p) |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in self.correlations():
            lines.append(
                f"| {row['proxy']} | {row['steps']} | {row['seconds']:.1f} | {row['kendall_tau']:+.2f} ({row['kendall_p']:.3f}) | "
                f"{row['spearman_rho']:+.2f} ({row['spearman_p']:.3f}) |"
            )
        return "\n".join(lines)


def run(
    task_name: str,
    options: dict | None = None,
    *,
    levels: list[float] = (0.25, 0.5, 1.0),
    n_random: int = 6,
    seeds: int = 2,
    jobs: int = 1,
    seed: int = 0,
    given: list[str] = (),
    imports: tuple[str, ...] = (),
    versus: list[dict[str, Any]] = (),
) -> Fidelity:
    """Measure the panel of ``task_name`` (see the module docstring); each mapping of
    ``versus`` is another proxy's task settings, laid over ``options`` for its proxy trainings
    only."""
    from tasks import get_task

    options = dict(options or {})
    task = get_task(task_name, **options)
    steps = rung_steps(task, list(levels))
    others = {versus_label(extra): {**options, **extra} for extra in versus}
    other_steps = {label: rung_steps(get_task(task_name, **o), list(levels)) for label, o in others.items()}
    panel = [PanelLoss(name, "baseline", spec=name) for name in task.baseline_names()]
    panel += [
        PanelLoss(f"random {i + 1}", "random", trees=g)
        for i, g in enumerate(random_passers(task, n_random, seed))
    ]
    for path in given:
        resolve_losses(task, path)  # a bad file fails here, before any training
        panel.append(PanelLoss(path, "given", spec=path))
    start = time.perf_counter()
    with spawn_pool(jobs) as pool:
        jobs_of = {}
        for i, entry in enumerate(panel):
            jobs_of[pool.submit(_proxy_job, task_name, options, tuple(imports), entry, steps)] = (i, None)
            for label, other in others.items():
                job = pool.submit(_proxy_job, task_name, other, tuple(imports), entry, other_steps[label])
                jobs_of[job] = (i, label)
            for s in range(seeds):
                jobs_of[pool.submit(_final_job, task_name, options, tuple(imports), entry, s)] = (i, s)
        finals: dict[tuple[int, int], SeedRun] = {}
        for done, future in enumerate(as_completed(jobs_of), 1):
            i, s = jobs_of[future]
            if s is None or isinstance(s, str):
                values, seconds = future.result()
                if s is None:
                    panel[i].proxy, panel[i].seconds = values, seconds
                else:
                    panel[i].versus[s] = {"proxy": values, "seconds": seconds}
                what = f"proxy{'' if s is None else ' ' + s} " + ", ".join(
                    "div" if v is None else f"{v:.3f}" for v in values
                )
            else:
                finals[i, s] = found = future.result()
                what = f"final seed {s}: " + (found.diverged or f"{found.metrics[task.metric]:.3f}")
            print(f"[{done}/{len(jobs_of)}] {panel[i].label}: {what}", file=sys.stderr, flush=True)
    for i, entry in enumerate(panel):
        entry.finals = [finals[i, s] for s in range(seeds)]
    return Fidelity(
        task.name, task.metric, steps, panel, seeds, jobs, time.perf_counter() - start, other_steps
    )


def versus_label(settings: dict[str, Any]) -> str:
    """The label of another proxy's settings: ``key=value`` pairs, comma-separated."""
    return ",".join(f"{key}={value}" for key, value in settings.items())
