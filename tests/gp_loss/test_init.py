"""``--init baselines``: the initial population starts from the task's baseline trees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from gp_loss.core.settings import EvolutionConfig
from gp_loss.engine.evolution import Limits
from gp_loss.run.runner import RunSettings, start
from gp_loss.trees.parse import parse_tree
from tasks import get_task
from tests.test_cli import run_cli


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]


def test_baselines_come_first_then_their_mutants(tmp_path):
    settings = RunSettings(
        "det_coco",
        {"steps": 4, "final_steps": 4},
        evolution=EvolutionConfig(population_size=3, seed=0, init="baselines"),
        limits=Limits(max_explored=5),
    )
    search = start(settings, tmp_path / "run", progress=False)
    task = search.evolution.task
    names = [name for name, _ in search.evolution.seed_genomes()]
    assert names == sorted(task.baselines)  # det's tree baselines; ce+smooth_l1 is no tree
    search.run()
    events = _events(tmp_path / "run")
    for event, name in zip(events, names):
        assert event["phase"] == "init" and event["seed"] == name
        assert event["trees"] == dict(task.baselines[name])
    for event in events[len(names) :]:
        if event["phase"] != "init":
            continue
        base = task.baselines[event["seed"]]
        changed = [slot for slot in base if event["trees"][slot] != base[slot]]
        assert changed == [event["slot"]] and event["mutation"]


def test_baselines_outside_the_space_are_left_out():
    from gp_loss.core.settings import SpaceLimits
    from gp_loss.engine.evolution import AgingEvolution

    task = get_task("cls_digits")

    class WithOne(type(task)):
        baselines: ClassVar[dict] = {
            **task.baselines,
            "scaled_ce": {"cls": "mul(one, neg(mul(y, log(y_hat))))"},
        }

    with_one = WithOne()
    plain = AgingEvolution(with_one, lambda c: None, EvolutionConfig(init="baselines"))
    seeded = dict(plain.seed_genomes())
    assert set(seeded) == set(task.baselines)  # `one` is outside the space without --constant-one
    for genome in seeded.values():
        parse_tree(genome["cls"], plain.signatures["cls"])
    space = SpaceLimits(constant_one=True)
    wider = AgingEvolution(with_one, lambda c: None, EvolutionConfig(init="baselines"), space=space)
    assert "scaled_ce" in dict(wider.seed_genomes())


def test_cli_init_is_recorded(tmp_path):
    done = run_cli(
        "evolve", "--task", "cls_digits", "--task-option", "steps=20",
        "--init", "baselines", "--max-explored", "4", "--quiet", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "run" / "run.json").read_text())
    assert config["evolution"]["init"] == "baselines"
    assert _events(tmp_path / "run")[0]["seed"]
