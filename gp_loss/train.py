"""``train``: retrain a task's model with a baseline or a found loss; final numbers on test."""

from __future__ import annotations

import statistics
from pathlib import Path

from gp_loss.errors import GpLossError
from gp_loss.exchange import read_best
from gp_loss.module import TreeLoss

#: Short names users type for common baselines.
ALIASES = {"ce": "cross_entropy", "soft_dice": "dice", "iou_loss": "iou", "giou_loss": "giou"}


def resolve_losses(task, spec: str) -> tuple[str, dict]:
    """``spec`` is a baseline name of the task (or an alias) or a best.json / run directory."""
    path = Path(spec)
    if spec.endswith(".json") or path.is_dir() or path.exists():
        best = read_best(path)
        wanted = {s.name for s in task.slots}
        if set(best.slots) != wanted:
            raise GpLossError(
                f"{spec} has slots {sorted(best.slots)}, task {task.name!r} needs {sorted(wanted)}"
            )
        return str(spec), {name: TreeLoss(loss.tree, loss.signature) for name, loss in best.slots.items()}
    name = ALIASES.get(spec, spec)
    if name in task.baselines:
        trees = task.baselines[name]
        return name, {slot.name: TreeLoss(trees[slot.name], slot.signature(True)) for slot in task.slots}
    custom = getattr(task, "custom_losses", {})
    if name in custom:
        return name, custom[name](task)
    known = ", ".join(sorted({*task.baselines, *custom}))
    raise GpLossError(f"unknown loss {spec!r} for task {task.name!r}; known: {known}, or a best.json path")


def train(task, spec: str, seeds: int = 1, first_seed: int = 0) -> str:
    """Train with ``seeds`` seeds; a Markdown table of each test metric, mean +- std."""
    if seeds < 1:
        raise GpLossError("--seeds must be at least 1")
    label, losses = resolve_losses(task, spec)
    runs = [task.final_evaluate(losses, seed=first_seed + i) for i in range(seeds)]
    metrics = list(runs[0])
    lines = [
        f"task {task.name}, loss {label}, {seeds} seed(s), metrics on the test split",
        "",
        "| metric | mean | std | per seed |",
        "|---|---:|---:|---|",
    ]
    for metric in metrics:
        values = [r[metric] for r in runs]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(
            f"| {metric} | {statistics.mean(values):.4f} | {std:.4f} | "
            + ", ".join(f"{v:.4f}" for v in values)
            + " |"
        )
    return "\n".join(lines)
