"""finalize: the top losses of a run retrained beside the baseline over the same seeds, paired
verdicts written into best.json, resumable after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gp_loss import finalize, search
from gp_loss.core.baselines import get_baseline
from gp_loss.results.final_training import SeedRun
from gp_loss.results.finalists import LOG, Finalists, Row, finalize_within, select_finalists
from gp_loss.results.report import leaderboard
from tests.test_cli import ROOT, call_cli, run_cli

CE = get_baseline("cross_entropy").tree
TINY = {"steps": 25}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A cls_digits run seeded with the baseline trees: its finalists include the CE tree."""
    out = tmp_path_factory.mktemp("fin") / "run"
    search(
        "cls_digits",
        out=out,
        max_trained=4,
        progress=False,
        init="baselines",
        population=3,
        task_options=TINY,
    )
    return out


def test_finalists_are_distinct_and_ranked_like_the_search():
    events = [
        {
            "id": 0,
            "outcome": "trained",
            "fitness": 0.5,
            "trees": {"cls": "a"},
            "gec_key": "k1",
            "rungs": [{}, {}],
        },
        {
            "id": 1,
            "outcome": "trained",
            "fitness": 0.9,
            "trees": {"cls": "b"},
            "gec_key": "k2",
            "rungs": [{}],
        },
        {
            "id": 2,
            "outcome": "trained",
            "fitness": 0.4,
            "trees": {"cls": "c"},
            "gec_key": "k1",
            "rungs": [{}, {}],
        },
        {"id": 3, "outcome": "equivalent", "fitness": 0.5, "trees": {"cls": "d"}, "gec_key": "k1"},
        {
            "id": 4,
            "outcome": "trained",
            "fitness": 0.3,
            "trees": {"cls": "e"},
            "gec_key": "k3",
            "rungs": [{}, {}],
        },
    ]
    # the last rung first (0.5, 0.3: 2 is gradient-equivalent to 0, so out), then the first rung
    assert [e["id"] for e in select_finalists(events, 3)] == [0, 4, 1]


def _row(label: str, kind: str, accuracies: list[float]) -> Row:
    runs = [SeedRun(seed, {"accuracy": a}, None, 1.0) for seed, a in enumerate(accuracies)]
    return Row(label, kind, label if kind == "baseline" else {"cls": "y_hat"}, runs=runs)


def test_the_winner_is_compared_with_every_named_baseline():
    rows = [
        _row("#1", "finalist", [0.90, 0.92, 0.94]),
        _row("ce", "baseline", [0.80, 0.81, 0.82]),  # differences 0.10, 0.11, 0.12: beats
        _row("focal", "baseline", [0.95, 0.97, 0.99]),  # differences -0.05 each: loses
    ]
    table = Finalists("cls_digits", "accuracy", ["accuracy"], 3, rows)
    verdicts = table.verdicts()
    assert [(v["baseline"], v["verdict"]) for v in verdicts] == [("ce", "beats"), ("focal", "loses")]
    assert table.verdict() == verdicts[0]
    assert abs(verdicts[0]["mean"] - 0.11) < 1e-12 and abs(verdicts[1]["mean"] + 0.05) < 1e-12
    text = table.markdown()
    assert "| accuracy vs ce | accuracy vs focal |" in text
    assert "**verdict: #1 beats ce on accuracy: +11.0 [+8.5, +13.5]" in text  # t(0.975, 2) = 4.303
    assert "- also: #1 loses to focal on accuracy: -5.0 [-5.0, -5.0]" in text


@pytest.mark.slow
def test_a_tie_is_reported_as_a_tie_and_recorded_in_best_json(run):
    table = finalize(run, top=2, seeds=2, task_options=TINY, quiet=True)
    labels = [row.label for row in table.rows]
    assert labels[-1] == "cross_entropy" and len(labels) == 3
    ce = next(row for row in table.finalists if row.spec == {"cls": CE})  # the CE tree itself
    diff = table.difference(ce, table.baselines[0], "accuracy")
    assert (diff.mean, diff.low, diff.high, diff.verdict) == (
        0.0,
        0.0,
        0.0,
        "ties",
    )  # same seeds, same training
    best = json.loads((run / "best.json").read_text())
    verdict = best["finalists"]["verdict"]
    assert verdict["winner"] == table.winner.label and verdict["verdict"] in ("beats", "ties", "loses")
    assert best["slots"]["cls"]["tree"] == table.winner.spec["cls"]  # best.json is now the winner's
    assert "verdict:" in leaderboard(run) and "accuracy vs cross_entropy" in leaderboard(run)
    again = finalize(run, top=2, seeds=2, task_options=TINY, quiet=True)  # everything reused
    assert [r.runs for r in again.rows] == [r.runs for r in table.rows]
    assert len((run / LOG).read_text().splitlines()) == 6


@pytest.mark.slow
def test_finalize_resumes_after_a_kill_without_redoing_finished_trainings(tmp_path):
    out = tmp_path / "run"
    search(
        "cls_digits",
        out=out,
        max_trained=3,
        progress=False,
        init="baselines",
        population=3,
        task_options=TINY,
    )
    command = [sys.executable, str(ROOT / "cli.py"), "finalize", str(out), "--top", "2", "--seeds", "3"]
    command += ["--task-option", "steps=150"]  # seconds each: long enough to be killed between trainings
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / LOG
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = log.read_text().splitlines()
    assert 2 <= len(finished) < 9
    done = run_cli(*command[2:])
    assert done.returncode == 0, done.stderr
    assert f"{len(finished)} finished before" in done.stderr
    lines = log.read_text().splitlines()
    assert lines[: len(finished)] == finished and len(lines) == 9  # kept, then only the rest
    keys = [(json.loads(line)["key"], json.loads(line)["seed"]) for line in lines]
    assert len(set(keys)) == 9


@pytest.mark.slow
def test_evolve_finalize_through_the_cli(tmp_path):
    out = tmp_path / "run"
    done = call_cli(
        "evolve", "--task", "cls_digits", "--max-trained", "3", "--population", "3", "--task-option", "steps=20",
        "--out", str(out), "--quiet", "--finalize", "--finalize-top", "1", "--finalize-seeds", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "verdict:" in done.stdout and "accuracy vs cross_entropy" in done.stdout
    assert json.loads((out / "best.json").read_text())["finalists"]["seeds"] == 2
    bad = call_cli("finalize", str(out), "--baseline", "nonsense")
    assert bad.returncode == 2 and bad.stderr.startswith("gp-loss: unknown loss 'nonsense'")


class TickingClock:
    """A clock that moves ``tick`` seconds every time it is read."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


@pytest.mark.slow
def test_finalize_within_runs_seed_rounds_while_the_next_one_fits(tmp_path):
    out = tmp_path / "run"
    search("cls_digits", out=out, max_trained=3, progress=False, population=3, task_options=TINY)
    # each round reads as 20 s: after round 1, 20 s gone + 20 s more > 35 s, so it stops there
    one = finalize_within(out, 35, top=2, max_seeds=3, quiet=True, clock=TickingClock(10))
    assert one.seeds == 1 and all(len(row.runs) == 1 for row in one.rows)
    every = finalize_within(out, 10_000, top=2, max_seeds=3, quiet=True, clock=TickingClock(10))
    assert every.seeds == 3 and every.rows[0].runs[0] == one.rows[0].runs[0]  # round 1 kept, not redone
    assert json.loads((out / "best.json").read_text())["finalists"]["seeds"] == 3
    assert len((out / LOG).read_text().splitlines()) == 3 * len(every.rows)


@pytest.mark.slow
def test_evolve_keeps_a_share_of_its_budget_for_the_finalists(tmp_path):
    out = tmp_path / "run"
    done = call_cli(
        "evolve", "--task", "cls_digits", "--max-trained", "3", "--population", "3", "--task-option", "steps=20",
        "--budget", "10m", "--finalize-share", "0.5", "--finalize-top", "1", "--finalize-seeds", "2",
        "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "verdict:" in done.stdout
    assert json.loads((out / "best.json").read_text())["finalists"]["seeds"] == 2
    assert json.loads((out / "run.json").read_text())["limits"]["budget"] == 300
    for flags, message in (
        (("--task", "cls_digits", "--finalize-share", "1.5"), "must lie between 0 and 1"),
        (("--resume", "--out", str(out), "--finalize-share", "0.3"), "give --budget"),
    ):
        bad = call_cli("evolve", *flags)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
