"""``bench lrp``: calibrate the Loss-Rejection Protocol on known-good and known-bad losses."""

from __future__ import annotations

import random
import time

import torch

from gp_loss.adapters import adapter_class
from gp_loss.bench.timing import machine
from gp_loss.core.events import REJECTED
from gp_loss.fitness.probe import probe_head
from gp_loss.fitness.stages import LossRejection, ProxyTraining
from gp_loss.trees.loss_module import TreeLoss
from gp_loss.trees.space import random_tree, tree_inputs

#: Short words for the Loss-Rejection outcomes in the benches' tables.
VERDICT = {"passed": "pass", "rejected": "reject", "invalid": "invalid"}


def negation(tree: str) -> str:
    """``neg`` of a tree string, its weight kept in front (``C * neg(...)``)."""
    from gp_loss.trees.parse import split_weight

    weight, body = split_weight(tree)
    return f"neg({body})" if weight == "1" else f"{weight} * neg({body})"


def known_panel(task, slot) -> list[tuple[str, str, str]]:
    """(kind, label, tree) of the known-good and known-bad losses of ``slot``, each tree once."""
    rows = [
        ("good", f"baseline {name}", trees[slot.name])
        for name, trees in sorted(task.baselines.items())
        if slot.name in trees
    ]
    panels = adapter_class(slot.adapter).calibration
    rows += [("good", name, tree) for name, tree in panels.get("good", {}).items()]
    good = [tree for _, _, tree in rows]
    rows += [("bad", "negation of a known-good loss", negation(tree)) for tree in good]
    rows += [("bad", label, tree) for label, tree in panels.get("bad", {}).items()]
    rows += [("bad", label, tree) for label, tree in panels.get("collapsing", {}).items()]
    seen: set[str] = set()
    return [r for r in rows if not (r[2] in seen or seen.add(r[2]))]


def run(task, n_random: int = 30, seed: int = 0, **lrp_options) -> str:
    """Pass/reject, gain g and seconds per candidate for ``task``'s current target metric;
    returns a Markdown report. ``lrp_options`` go to :class:`LossRejection` (``protocol``,
    ``steps``, ``lr``, ``eta``)."""
    torch.set_num_threads(1)
    lrp = LossRejection(ProxyTraining(task), task, **lrp_options)
    settings = "; ".join(
        f"{s.name}: "
        + _describe(lrp.settings(s.name), probe_head(task, s.name), len(task.probe_batch(s.name)))
        for s in task.slots
    )
    lines = [
        f"task `{task.name}`, target metric `{task.metric}`; LRP protocol `{lrp.protocol}`: {settings}; "
        "1 torch thread",
        f"machine: {machine()}",
        "",
        "| slot | kind | loss | tree | g | verdict | ms |",
        "|---|---|---|---|---:|---|---:|",
    ]
    misjudged = []
    random.seed(seed)
    for slot in task.slots:
        signature = slot.signature()
        rows = known_panel(task, slot)
        drawn = 0
        while drawn < n_random:
            tree = random_tree(signature, 1, 3)
            if all(group & tree_inputs(tree) for group in signature.required_inputs):
                rows.append(("random", "random tree (valid inputs)", str(tree)))
                drawn += 1
        lrp.judge(TreeLoss.for_slot(slot, rows[0][2], True), slot.name)  # warm-up: allocator, lazy init
        for kind, label, tree in rows:
            start = time.perf_counter()
            outcome, gain, _ = lrp.judge(
                TreeLoss.for_slot(slot, tree, True), slot.name
            )  # baselines may use one
            verdict = VERDICT[outcome]
            ms = (time.perf_counter() - start) * 1e3
            if (kind == "good" and verdict != "pass") or (kind == "bad" and verdict == "pass"):
                misjudged.append(f"{slot.name}: {label} `{tree}` -> {verdict}")
            g = ("check" if outcome == REJECTED else "n/a") if gain is None else f"{gain:+.3f}"
            lines.append(f"| {slot.name} | {kind} | {label} | `{tree}` | {g} | {verdict} | {ms:.1f} |")
    randoms = [line for line in lines if "| random |" in line]
    passed = sum("| pass |" in line for line in randoms)
    lines += [
        "",
        f"random trees passing: {passed} / {len(randoms)}",
        "every known-good passes and every known-bad is rejected: "
        + ("yes" if not misjudged else "NO: " + "; ".join(misjudged)),
    ]
    return "\n".join(lines)


def _describe(settings, head, probe_size: int) -> str:
    if settings.protocol == "shared" and head is not None:
        layers = f"two-layer head ({settings.hidden} hidden)" if settings.hidden else "linear head"
        where = f"{layers} on {len(head)} probe samples' features"
    else:
        where = f"free predictions of {probe_size} probe samples"
    text = f"{where}, K = {settings.steps} Adam steps, lr = {settings.lr}, eta = {settings.eta}"
    if settings.protocol == "shared" and settings.max_grad_ratio is not None:
        text += f", gradient at most {settings.max_grad_ratio:g}x the slot baseline's"
    return text


def run_all_metrics(make_task, metrics, n_random: int = 30, seed: int = 0, **lrp_options) -> str:
    """:func:`run` once per target metric (``make_task(metric)`` builds the task)."""
    reports = [
        f"## target metric {m}\n\n" + run(make_task(m), n_random, seed, **lrp_options) for m in metrics
    ]
    return "\n\n".join(reports)
