"""``bench lrp``: calibrate the Loss-Rejection Protocol on known-good and known-bad losses."""

from __future__ import annotations

import random
import time

import torch

from gp_loss.bench.timing import machine
from gp_loss.fitness.stages import LossRejection, ProxyTraining
from gp_loss.module import TreeLoss
from gp_loss.space import random_tree, tree_inputs

#: Known-bad trees per adapter, beyond the negations of the known-good ones.
KNOWN_BAD = {
    "softmax_onehot": {
        "constant-like (mean_c of probabilities is 1/C)": "add(mean_c(y_hat), mean_c(y))",
        "target-blind: square(y_hat)": "square(y_hat)",
        "target-blind: negative entropy": "mul(y_hat, log(y_hat))",
        "prediction-blind: square(y)": "square(y)",
    },
    "box_iou_areas": {
        "constant-like: union/union": "mul(union, inv(union))",
        "maximises overlap loss: inter/union": "mul(inter, inv(union))",
        "grows boxes: -enclose": "neg(enclose)",
    },
}


def _candidates(task, slot) -> list[tuple[str, str, str]]:
    good = sorted({trees[slot.name] for trees in task.baselines.values() if slot.name in trees})
    rows = [
        ("good", f"baseline {name}", trees[slot.name])
        for name, trees in sorted(task.baselines.items())
        if slot.name in trees
    ]
    seen = set()
    rows = [r for r in rows if not (r[2] in seen or seen.add(r[2]))]
    rows += [("bad", "negation of a known-good loss", f"neg({tree})") for tree in good]
    rows += [("bad", label, tree) for label, tree in KNOWN_BAD[slot.adapter].items()]
    return rows


def run(task, n_random: int = 30, seed: int = 0, **lrp_options) -> str:
    """Pass/reject, gain g and seconds per candidate for ``task``'s current target metric;
    returns a Markdown report."""
    torch.set_num_threads(1)
    lrp = LossRejection(ProxyTraining(task), task, **lrp_options)
    lines = [
        f"task `{task.name}`, target metric `{task.metric}`; LRP: B = "
        + ", ".join(f"{len(task.probe_batch(s.name))} ({s.name})" for s in task.slots)
        + " probe samples, "
        f"K = {lrp.steps} Adam steps, lr = {lrp.lr}, eta = {lrp.eta}; 1 torch thread",
        f"machine: {machine()}",
        "",
        "| slot | kind | loss | tree | g | verdict | ms |",
        "|---|---|---|---|---:|---|---:|",
    ]
    misjudged = []
    random.seed(seed)
    for slot in task.slots:
        signature = slot.signature()
        rows = _candidates(task, slot)
        drawn = 0
        while drawn < n_random:
            tree = random_tree(signature, 1, 3)
            if all(group & tree_inputs(tree) for group in signature.required_inputs):
                rows.append(("random", "random tree (valid inputs)", str(tree)))
                drawn += 1
        lrp.gain(TreeLoss(rows[0][2], signature), slot.name)  # warm-up: allocator, lazy init
        for kind, label, tree in rows:
            start = time.perf_counter()
            gain = lrp.gain(TreeLoss(tree, signature), slot.name)
            ms = (time.perf_counter() - start) * 1e3
            verdict = (
                "invalid" if gain is None else ("pass" if gain >= lrp.threshold(slot.name) else "reject")
            )
            if (kind == "good" and verdict != "pass") or (kind == "bad" and verdict == "pass"):
                misjudged.append(f"{slot.name}: {label} `{tree}` -> {verdict}")
            g = "n/a" if gain is None else f"{gain:+.3f}"
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


def run_all_metrics(make_task, metrics, n_random: int = 30, seed: int = 0, **lrp_options) -> str:
    """:func:`run` once per target metric (``make_task(metric)`` builds the task)."""
    reports = [
        f"## target metric {m}\n\n" + run(make_task(m), n_random, seed, **lrp_options) for m in metrics
    ]
    return "\n\n".join(reports)
