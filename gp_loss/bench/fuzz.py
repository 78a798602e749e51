"""``bench fuzz``: random trees of every slot signature through every stage a loss goes through.

For each signature the registered tasks use (an adapter, spatial or not; plus the regression
adapter of the generic task), ``n`` random trees (DEAP half-and-half, depth 1 to 6) go through:

1. ``parse``: the printed tree parses back to the same tree;
2. ``validity``: the required-input check answers (it must not crash);
3. ``codegen``: the compiled loss on the adapter's example, its edge cases (extremes, ties,
   empty and all-ignored batches) and its prediction scaled to 0, +-1e-30 and +-1e30. The value
   must be finite everywhere and the gradient on the example and the edge cases, as the safe
   primitives promise; a gradient that overflows at the +-1e30 scalings (the chain rule through
   a deep tree can, in float32) is counted apart, since nothing promises otherwise and the
   validity check and stop-invalid end such a loss in a search;
4. ``lrp``: the Loss-Rejection Protocol's free-prediction gain (5 Adam steps) is finite or
   marks the loss invalid, never an error;
5. ``python export``: the standalone module computes the same value;
6. ``torchscript export``: trees scripted 200 at a time, the same value again.

Each tree has a time limit (a hang is a failure); every failure is listed with its tree and
stage, so that it can become a regression test.
"""

from __future__ import annotations

import math
import random
import signal
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import click
import torch

from gp_loss.adapters import get_adapter
from gp_loss.bench.timing import machine
from gp_loss.core.signature import SlotSignature
from gp_loss.fitness.rejection import free_prediction_gain
from gp_loss.trees.best_json import SlotLoss
from gp_loss.trees.loss_module import TreeLoss, file_module, source_module
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.space import random_tree, tree_inputs

#: Seconds one tree may take through stages 1-5 before it counts as a hang.
TREE_TIMEOUT = 20
SCRIPT_BATCH = 200


def signatures() -> list[SlotSignature]:
    """Every (adapter, spatial) pair of the registered tasks' slots, and the regression adapter's."""
    from tasks import TASKS

    found = {(slot.adapter, slot.spatial) for task in TASKS.values() for slot in task.slots}
    found |= {("regression", False)}
    return [SlotSignature(adapter, spatial) for adapter, spatial in sorted(found)]


def inputs(signature: SlotSignature) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """The adapter's example, edge cases and scaled extremes of its prediction."""
    adapter = get_adapter(signature.adapter)
    prediction, target = adapter.example(torch.Generator().manual_seed(0), signature.spatial)
    cases = [("example", prediction, target)]
    cases += [
        (name, p, t)
        for name, (p, t) in adapter.edge_cases(torch.Generator().manual_seed(1), signature.spatial).items()
    ]
    for scale in (0.0, 1e-30, -1e-30, 1e30, -1e30):
        cases.append((f"{EXTREME}{scale:g}", prediction * scale, target))
    return cases


EXTREME = "prediction x "


@dataclass
class SignatureReport:
    """What the fuzzing of one signature found."""

    signature: str
    trees: int = 0
    valid: int = 0
    seconds: float = 0.0
    failures: Counter = field(default_factory=Counter)
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # (stage, tree, detail)
    #: trees whose gradient overflows at the +-1e30 scalings only (not a failure)
    extreme_gradients: int = 0

    def fail(self, stage: str, tree: str, detail: str) -> None:
        self.failures[stage] += 1
        if len(self.examples) < 20:
            self.examples.append((stage, tree, detail))


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def _finite(loss, prediction: torch.Tensor, target: torch.Tensor) -> str | None:
    """Why the loss is not finite in value or gradient at these inputs, or ``None``."""
    pred = prediction.detach().clone().requires_grad_(True)
    value = loss(pred, target)
    if not bool(torch.isfinite(value)):
        return f"value {float(value.detach())}"
    if value.requires_grad:
        (grad,) = torch.autograd.grad(value, pred, allow_unused=True)
        if grad is not None and not bool(torch.isfinite(grad).all()):
            return GRADIENT
    return None


GRADIENT = "gradient not finite"


def _trees(signature: SlotSignature, n: int, seed: int) -> Iterator[str]:
    random.seed(seed)
    for i in range(n):
        yield str(random_tree(signature, 1, 1 + i % 6))


def fuzz_signature(signature: SlotSignature, n: int, seed: int = 0) -> SignatureReport:
    """Fuzz one signature with ``n`` random trees (see the module docstring)."""
    torch.set_num_threads(1)
    label = f"{signature.adapter}{' (spatial)' if signature.spatial else ''}"
    report = SignatureReport(label)
    cases = inputs(signature)
    example_pred, example_target = cases[0][1], cases[0][2]
    start = time.perf_counter()
    pending: list[tuple[str, float]] = []
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for tree in _trees(signature, n, seed):
            report.trees += 1
            signal.alarm(TREE_TIMEOUT)
            try:
                stage = "parse"
                nodes = parse_tree(tree, signature)
                if str(nodes) != tree:
                    report.fail(stage, tree, f"printed back as {nodes}")
                    continue
                stage = "validity"
                report.valid += all(group & tree_inputs(nodes) for group in signature.required_inputs)
                stage = "codegen"
                loss = TreeLoss(tree, signature)
                overflow = False
                for name, prediction, target in cases:
                    problem = _finite(loss, prediction, target)
                    if (
                        problem == GRADIENT
                        and name.startswith(EXTREME)
                        and abs(float(name[len(EXTREME) :])) > 1
                    ):
                        overflow = True
                    elif problem is not None:
                        report.fail(stage, tree, f"{name}: {problem}")
                        break
                report.extreme_gradients += overflow
                stage = "lrp"
                gain = free_prediction_gain(
                    loss, example_pred, example_target, lambda p, t: -p.flatten(1).abs().mean(1), 5, 0.1
                )
                if gain is not None and not math.isfinite(gain):
                    report.fail(stage, tree, f"gain {gain}")
                stage = "python export"
                expected = float(loss(example_pred, example_target))
                module = source_module({"s": SlotLoss(tree, signature.adapter)})
                exported = float(module.Loss()(example_pred, example_target))
                if not math.isclose(exported, expected, rel_tol=1e-5, abs_tol=1e-6):
                    report.fail(stage, tree, f"{exported} != {expected}")
                pending.append((tree, expected))
            except _Timeout:
                report.fail(stage, tree, f"took over {TREE_TIMEOUT} s")
            except Exception as err:  # a crash anywhere is a finding, not the end of the bench
                report.fail(stage, tree, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
            finally:
                signal.alarm(0)
            if len(pending) == SCRIPT_BATCH:
                _scripted(signature, pending, example_pred, example_target, report)
                pending = []
        if pending:
            _scripted(signature, pending, example_pred, example_target, report)
    finally:
        signal.signal(signal.SIGALRM, previous)
    report.seconds = time.perf_counter() - start
    return report


def _scripted(signature, batch, prediction, target, report: SignatureReport) -> None:
    """Script ``batch`` trees as one module (TorchScript's compile is the costly part) and
    compare every slot's value with the in-process loss."""
    slots = {f"s{i}": SlotLoss(tree, signature.adapter) for i, (tree, _) in enumerate(batch)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = file_module(slots)
            scripted = torch.jit.script(module.SearchedLosses())
    except Exception as err:
        for tree, _ in batch:
            report.fail("torchscript export", tree, f"batch failed to script: {type(err).__name__}")
        return
    with torch.jit.optimized_execution(False):
        for i, (tree, expected) in enumerate(batch):
            try:
                value = float(getattr(scripted, f"s{i}")(prediction, target))
                if not math.isclose(value, expected, rel_tol=1e-5, abs_tol=1e-6):
                    report.fail("torchscript export", tree, f"{value} != {expected}")
            except Exception as err:
                report.fail(
                    "torchscript export", tree, f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
                )


def _job(adapter: str, spatial: bool, n: int, seed: int) -> SignatureReport:
    return fuzz_signature(SlotSignature(adapter, spatial), n, seed)


def run(n: int = 10_000, seed: int = 0, jobs: int = 1) -> str:
    """Fuzz every signature with ``n`` trees each (``jobs`` signatures at a time); Markdown."""
    from concurrent.futures import as_completed

    from gp_loss.execution.spawn import spawn_pool

    start = time.perf_counter()
    chosen = signatures()
    click.echo(f"fuzzing {len(chosen)} signatures x {n} trees, {jobs} at a time", err=True)
    done: dict[int, SignatureReport] = {}

    def finished(i: int, report: SignatureReport) -> None:
        done[i] = report
        failures = sum(report.failures.values())
        click.echo(
            f"[{len(done)}/{len(chosen)}] {report.signature}: {report.trees} trees, {failures} failure(s), "
            f"{report.seconds:.0f} s",
            err=True,
        )

    if jobs > 1:
        with spawn_pool(jobs) as pool:
            futures = {pool.submit(_job, s.adapter, s.spatial, n, seed): i for i, s in enumerate(chosen)}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    else:
        for i, s in enumerate(chosen):
            finished(i, fuzz_signature(s, n, seed))
    reports = [done[i] for i in range(len(chosen))]
    wall = time.perf_counter() - start
    stages = ("parse", "validity", "codegen", "lrp", "python export", "torchscript export")
    lines = [
        f"{n} random trees per signature (depth 1-6), seed {seed}; {jobs} job(s), 1 torch thread each; "
        f"{wall / 60:.1f} min in all",
        f"machine: {machine()}",
        "",
        "| signature | trees | valid inputs | "
        + " | ".join(f"{s} failures" for s in stages)
        + " | gradient overflow at +-1e30 only | seconds |",
        "|---|---:|---:|" + "---:|" * (len(stages) + 2),
    ]
    for r in reports:
        cells = " | ".join(str(r.failures[s]) for s in stages)
        lines.append(
            f"| {r.signature} | {r.trees} | {r.valid} | {cells} | {r.extreme_gradients} | {r.seconds:.0f} |"
        )
    total = sum(r.trees for r in reports)
    failed = sum(sum(r.failures.values()) for r in reports)
    lines += ["", f"{total} trees, {failed} failures"]
    for r in reports:
        lines += [f"- {r.signature}, {stage}: `{tree}`: {detail}" for stage, tree, detail in r.examples]
    return "\n".join(lines)
