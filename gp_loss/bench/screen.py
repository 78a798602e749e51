"""``bench screen``: candidates per second through stages 1-4 (dedup, validity, GEC, LRP)."""

from __future__ import annotations

import random
import time
from collections import Counter

import torch

from gp_loss.bench.timing import machine
from gp_loss.core.events import TRAINED
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.trees.space import random_tree
from gp_loss.trees.variation import mutate


class _Screened:
    """Stands in for proxy training: records that a candidate passed stages 1-4."""

    name = "proxy"

    def __call__(self, candidate) -> Evaluation:
        return Evaluation(TRAINED, 0.0)


def _stream(task, n: int, seed: int) -> list[dict[str, str]]:
    """Candidates as a search sees them: half fresh random trees, half mutants of earlier ones
    (by the task's own mutations)."""
    random.seed(seed)
    slot = task.slots[0]
    signature = slot.signature()
    genomes: list[dict[str, str]] = []
    for _ in range(n):
        if genomes and random.random() < 0.5:
            from gp_loss.trees.parse import parse_tree

            parent = parse_tree(random.choice(genomes)[slot.name], signature)
            child, _ = mutate(parent, signature, kinds=task.default_mutations)
            genomes.append({slot.name: str(child)})
        else:
            genomes.append({slot.name: str(random_tree(signature, 1, 3))})
    return genomes


def screen(task, n: int, seed: int = 0) -> tuple[float, Counter, dict[str, float]]:
    """Candidates/s, outcome counts, mean ms per stage for ``n`` candidates on one thread."""
    pipeline = FitnessPipeline(task)
    pipeline.lrp.inner = _Screened()
    genomes = _stream(task, n, seed)
    pipeline(Candidate(dict(genomes[0]), -1))  # warm-up
    pipeline = FitnessPipeline(task)
    pipeline.lrp.inner = _Screened()
    outcomes: Counter = Counter()
    stage_seconds: Counter = Counter()
    start = time.perf_counter()
    for i, genome in enumerate(genomes):
        result = pipeline(Candidate(genome, i))
        outcomes["passed LRP" if result.outcome == TRAINED else result.outcome] += 1
        stage_seconds.update(result.seconds)
    elapsed = time.perf_counter() - start
    return n / elapsed, outcomes, {k: 1e3 * v / n for k, v in stage_seconds.items()}


def run(n: int = 300, seed: int = 0) -> str:
    """Markdown report for the cls_digits and seg_voc probes (the real tasks' probe batches)."""
    from gp_loss.fitness.probe import probe_batch
    from tasks import get_task

    torch.set_num_threads(1)
    lines = [
        f"{n} candidates per signature (half random trees of depth 1-3, half mutants), stages 1-4 "
        "(dedup, validity, GEC, LRP with the task's defaults), proxy training excluded; 1 torch thread",
        f"machine: {machine()}",
        "",
        "| signature | probe batch | candidates/s | outcomes | ms per stage, amortised over all candidates |",
        "|---|---|---:|---|---|",
    ]
    for task in (get_task("cls_digits"), get_task("seg_voc")):
        shape = tuple(probe_batch(task, task.slots[0].name).predictions.shape)
        rate, outcomes, stages = screen(task, n, seed)
        lines.append(
            f"| {task.name} | {shape} | {rate:.1f} | "
            + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
            + " | "
            + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
            + " |"
        )
    return "\n".join(lines)
