"""Pareto search: non-domination and crowding against a hand-checked front, rung-first
domination, a two-objective run through the CLI, and picking a front member."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gp_loss import load_loss
from gp_loss.core.errors import GpLossError
from gp_loss.engine.pareto import crowding, dominates, fronts, objective_values, ranking, worst
from tests.test_cli import call_cli

#: (accuracy, BF1) of six losses at one rung, by hand:
#: a (0.9, 0.2), b (0.6, 0.6), c (0.2, 0.9) are not dominated; d (0.5, 0.5) is dominated by b
#: only, e (0.3, 0.3) by b and d, f (0.2, 0.2) by everyone but itself.
POINTS = [(0, v) for v in ([0.9, 0.2], [0.6, 0.6], [0.2, 0.9], [0.5, 0.5], [0.3, 0.3], [0.2, 0.2])]


def test_fronts_of_a_hand_checked_set():
    assert fronts(POINTS) == [[0, 1, 2], [3], [4], [5]]


def test_crowding_distance_by_hand():
    # first front, sorted by either objective: a, b, c; the extremes get inf; b's gaps:
    # accuracy (0.9 - 0.2) / (0.9 - 0.2) = 1, BF1 (0.9 - 0.2) / (0.9 - 0.2) = 1: distance 2
    assert crowding(POINTS, [0, 1, 2]) == {0: math.inf, 1: pytest.approx(2.0), 2: math.inf}
    ranks = ranking(POINTS)
    assert [r for r, _ in ranks] == [0, 0, 0, 1, 2, 3]
    assert worst(POINTS) == 5
    # in one front, the most crowded goes first: four points on a line, the inner two crowded
    line = [(0, [x, 1 - x]) for x in (0.0, 0.1, 0.5, 1.0)]
    assert worst(line) == 1  # 0.1 sits closest to its neighbours


def test_a_higher_rung_dominates_whatever_its_scores():
    assert dominates((1, [0.1, 0.1]), (0, [0.9, 0.9])) and not dominates((0, [0.9, 0.9]), (1, [0.1, 0.1]))
    assert not dominates((0, [0.5, 0.5]), (0, [0.5, 0.5]))  # equal points do not dominate each other


def test_size_is_minimised():
    assert objective_values(["accuracy", "size"], {"accuracy": 0.9}, 7) == [0.9, -7.0]


@pytest.mark.slow
def test_a_two_objective_run_through_the_cli(tmp_path):
    run = tmp_path / "pareto"
    done = call_cli(
        "evolve", "--task", "cls_digits", "--objectives", "accuracy,size", "--max-trained", "12",
        "--task-option", "steps=30", "--out", str(run), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    best = json.loads((run / "best.json").read_text())
    assert best["objectives"] == ["accuracy", "size"] and best["front"]
    front = best["front"]
    for i, a in enumerate(front):  # no member dominates another
        for b in front[i + 1 :]:
            pa = (a["rung"], [a["objectives"]["accuracy"], -a["objectives"]["size"]])
            pb = (b["rung"], [b["objectives"]["accuracy"], -b["objectives"]["size"]])
            assert not dominates(pa, pb) and not dominates(pb, pa)
    chosen = front[best["pick"]]
    assert chosen["objectives"]["accuracy"] == max(m["objectives"]["accuracy"] for m in front)
    assert best["slots"]["cls"]["tree"] == chosen["trees"]["cls"]  # the default pick
    trained = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    accuracies = [e["metrics"]["accuracy"] for e in trained if e["outcome"] == "trained"]
    assert chosen["objectives"]["accuracy"] == max(accuracies)
    shown = call_cli("show", str(run))
    assert "first front of accuracy, size" in shown.stdout
    last = len(front) - 1
    loss = load_loss(run / "best.json", pick=last)
    logits, labels = torch.randn(4, 10), torch.tensor([0, 1, 2, 3])
    assert torch.isfinite(loss(logits, labels)) and front[last]["trees"]["cls"] in repr(loss)
    with pytest.raises(GpLossError, match="the front has members"):
        load_loss(run / "best.json", pick=len(front))
    done = call_cli("export", str(run), "--format", "python", "--pick", str(last))
    assert done.returncode == 0 and front[last]["trees"]["cls"] in done.stdout
    bad = call_cli("evolve", "--task", "cls_digits", "--objectives", "size,accuracy", "--max-explored", "3")
    assert bad.returncode == 2 and "first objective must be a task metric" in bad.stderr
