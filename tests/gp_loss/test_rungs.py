"""Multi-fidelity proxy: hurdles, promotion, continued training, exact resume across rungs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gp_loss.core.baselines import get_baseline
from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import EvolutionConfig, PipelineOptions, parse_fractions
from gp_loss.engine.evolution import Limits
from gp_loss.fitness.candidate import Candidate
from gp_loss.fitness.rungs import clears, hurdle, hurdles, rung_steps
from gp_loss.fitness.stages import ProxyTraining
from gp_loss.run.runner import RunSettings, resume, start
from tasks import get_task
from tests.test_cli import call_cli

CE = get_baseline("cross_entropy").tree


def test_hurdle_is_the_promoted_shares_lowest_score():
    assert hurdle([0.5, 0.9], 1 / 3) is None  # fewer than 3 scores: everybody goes on
    assert hurdle([0.5, 0.9, 0.1], 1 / 3) == 0.9  # top third of 3: the best one
    assert hurdle([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 1 / 3) == 0.5  # top 2 of 6
    assert hurdle([0.1, 0.2, 0.3, 0.4], 0.5) == 0.3
    assert hurdle([0.1, 0.2, 0.3, 0.4], 1.0) is None
    assert hurdles([[0.1, 0.2, 0.3]], 3, 1 / 3) == [0.3, None]
    assert clears(0.3, 0.3, 0.0) and not clears(0.29, 0.3, 0.0)
    assert not clears(0.0, 0.0, 0.0) and clears(0.0, None, 0.0)
    with pytest.raises(GpLossError, match="promote"):
        hurdle([0.1], 0.0)


def test_rung_fractions_are_checked():
    task = get_task("cls_digits", steps=60)
    assert rung_steps(task, (0.25, 1.0)) == [15, 60]
    assert parse_fractions("1,0.25", "--rungs") == (0.25, 1.0)
    for bad in ("0.5,2", "0.5", "a,1", "0,1"):
        with pytest.raises(GpLossError, match="--rungs"):
            parse_fractions(bad, "--rungs")


def test_a_candidate_under_the_hurdle_stops_and_one_over_it_trains_on_from_where_it_stopped():
    task = get_task("cls_digits", steps=60)
    proxy = ProxyTraining(task, rungs=(0.25, 1.0))
    stopped = proxy(Candidate({"cls": CE}, context={"hurdles": [2.0]}))  # accuracy never reaches 2
    assert [r["steps"] for r in stopped.rungs] == [15] and stopped.rungs[0]["hurdle"] == 2.0
    assert stopped.fitness == stopped.rungs[0]["fitness"] and stopped.rung == 0

    promoted = proxy(Candidate({"cls": CE}, context={"hurdles": [0.0]}))
    assert [r["steps"] for r in promoted.rungs] == [15, 60] and promoted.rung == 1
    assert promoted.rungs[0]["fitness"] == stopped.rungs[0]["fitness"]
    # continued, not restarted: the same accuracy as one uninterrupted 60-step training
    whole = ProxyTraining(task, rungs=(1.0,))(Candidate({"cls": CE}))
    assert promoted.fitness == whole.fitness and promoted.metrics == whole.metrics


def _settings(n: int, **pipeline) -> RunSettings:
    return RunSettings(
        "cls_digits",
        {"steps": 60},
        # without LRP most random trees train: many candidates meet the hurdles in a short run
        pipeline=PipelineOptions(rungs=(0.25, 1.0), lrp=False, **pipeline),
        evolution=EvolutionConfig(population_size=4, seed=3),
        limits=Limits(max_explored=n),
    )


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]


def _stable(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("seconds", "time")} for e in events]


def test_search_promotes_by_the_hurdles_earlier_candidates_set_and_resumes_exactly(tmp_path):
    start(_settings(60), tmp_path / "whole", progress=False).run()
    start(_settings(25), tmp_path / "split", progress=False).run()
    resume(tmp_path / "split", max_explored=60, progress=False).run()
    events = _events(tmp_path / "whole")
    assert _stable(events) == _stable(_events(tmp_path / "split"))

    # replay the log independently: every fresh training met the hurdle the earlier ones set
    reached: list[float] = []
    stopped = promoted = 0
    for event in events:
        if event["outcome"] not in ("trained", "diverged"):
            continue
        expected = hurdle(reached, 1 / 3)
        rungs = event["rungs"]
        if rungs:
            assert rungs[0].get("hurdle") == expected
            reached.append(rungs[0]["fitness"])
        if event["outcome"] == "trained":
            went_on = len(rungs) == 2
            assert went_on == clears(rungs[0]["fitness"], expected, 0.0)
            assert event["fitness"] == rungs[-1]["fitness"]
            stopped, promoted = stopped + (not went_on), promoted + went_on
    assert stopped > 0 and promoted > 0, (stopped, promoted)

    # the best is the best of those trained to the last rung, whatever the stopped ones scored
    checkpoint = json.loads((tmp_path / "whole" / "checkpoint.json").read_text())
    full = [e for e in events if e["outcome"] == "trained" and len(e["rungs"]) == 2]
    assert checkpoint["best"]["fitness"] == max(e["fitness"] for e in full)
    assert all(m["rung"] in (0, 1) for m in checkpoint["population"])


def test_one_rung_turns_it_off(tmp_path):
    start(_one_rung(30), tmp_path / "run", progress=False).run()
    trained = [e for e in _events(tmp_path / "run") if e["outcome"] == "trained"]
    assert trained and all([r["steps"] for r in e["rungs"]] == [60] for e in trained)


def _one_rung(n: int) -> RunSettings:
    settings = _settings(n)
    settings.pipeline.rungs = (1.0,)
    return settings


@pytest.mark.slow
def test_cli_rungs_flag(tmp_path):
    bad = call_cli("evolve", "--task", "cls_digits", "--rungs", "0.5,2", "--out", str(tmp_path / "r"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--rungs" in bad.stderr
    assert not (tmp_path / "r").exists()
    good = call_cli(
        "evolve", "--task", "cls_digits", "--task-option", "steps=40", "--rungs", "0.5,1",
        "--promote", "0.5", "--max-explored", "15", "--quiet", "--out", str(tmp_path / "g"),
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    config = json.loads((tmp_path / "g" / "run.json").read_text())
    assert config["pipeline"]["rungs"] == [0.5, 1.0] and config["pipeline"]["promote"] == 0.5
