"""The closing summary of a search: the best loss as a formula, and what was explored."""

from __future__ import annotations

from pathlib import Path

from gp_loss.engine.evolution import SearchState
from gp_loss.engine.progress import format_seconds
from gp_loss.trees.parse import parse_tree, shorten
from gp_loss.trees.symbolic import to_text

#: Trees larger than this print as their (shortened) tree string: sympy's printers recurse.
FORMULA_MAX_NODES = 400


def formula(tree: str, signature) -> str:
    """Plain-text, simplified formula of a tree (per element; the loss is its mean); the
    tree string itself, shortened, for a tree too large for a formula."""
    nodes = parse_tree(tree, signature)
    if len(nodes) > FORMULA_MAX_NODES:
        return f"[{len(nodes)} nodes] {shorten(tree)}"
    return to_text(nodes, signature.adapter_class)


def summary(run: str | Path, state: SearchState, task, constant_one: bool = False) -> str:
    """Text printed at the end of ``evolve``."""
    lines = [
        f"explored {state.explored} losses in {format_seconds(state.elapsed)} ({state.outcomes()}); "
        f"{state.trained} proxy trainings"
    ]
    if state.best is None:
        lines.append("no loss was trained yet: give the search more budget (--resume --budget ...)")
        return "\n".join(lines)
    lines.append(f"best {task.fitness_metric}: {state.best['fitness']:.4f} (loss #{state.best['id']})")
    for slot in task.slots:
        tree = state.best["genome"][slot.name]
        lines.append(f"  {slot.name}: L = mean[{formula(tree, slot.signature(constant_one))}]")
        lines.append(f"        tree {tree}")
    lines.append(f"best.json: {Path(run) / 'best.json'}  (load with gp_loss.load_loss, or `export`)")
    return "\n".join(lines)
