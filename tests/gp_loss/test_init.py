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
from tests.test_cli import call_cli


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]


def test_baselines_come_first_then_their_mutants(tmp_path):
    settings = RunSettings(
        "det_coco",
        {"steps": 4, "final_steps": 4, "trunk_steps": 4},
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
    done = call_cli(
        "evolve", "--task", "cls_digits", "--task-option", "steps=20",
        "--init", "baselines", "--max-explored", "4", "--quiet", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "run" / "run.json").read_text())
    assert config["evolution"]["init"] == "baselines"
    assert _events(tmp_path / "run")[0]["seed"]


def test_init_cache_starts_from_the_best_losses_the_cache_holds(tmp_path):
    from gp_loss import search
    from gp_loss.core.events import event_rank
    from gp_loss.engine.search_cache import SearchCache

    cache = tmp_path / "cache.sqlite"
    tiny = {"steps": 25}
    first = search(
        "cls_digits",
        out=tmp_path / "a",
        max_trained=4,
        max_explored=1000,
        population=2,
        progress=False,
        cache=cache,
        task_options=tiny,
    )
    trained = sorted(  # by the proxy rung reached, then the fitness there
        (e for e in _events(tmp_path / "a") if e["outcome"] == "trained"), key=event_rank, reverse=True
    )
    assert len(trained) == 4
    warm = search(
        "cls_digits",
        out=tmp_path / "b",
        max_explored=40,
        progress=False,
        cache=cache,
        task_options=tiny,
        population=3,
        init="cache",
        seed=1,
    )
    events = _events(tmp_path / "b")
    # the three best of the first run, best first, judged again for free, then their mutants
    assert [e["trees"] for e in events[:3]] == [e["trees"] for e in trained[:3]]
    assert [e["seed"] for e in events[:3]] == [
        f"cache #{k} ({e['fitness']:.4g})" for k, e in enumerate(trained[:3], 1)
    ]
    assert all(e["outcome"] == "cached" and e["entered"] for e in events[:3])
    assert warm.fitness >= first.fitness
    mutants = [e for e in events[3:] if e["phase"] == "init"]
    assert all(e["seed"].startswith("cache #") and e["mutation"] for e in mutants)
    # the seeds are fixed at the start: the cache grew since, a resume still proposes the same
    checkpoint = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    assert [s[1] for s in checkpoint["seeds"]] == [e["trees"] for e in trained[:3]]
    opened = SearchCache(cache)
    try:  # another setting's fitness is not comparable, but its losses still seed a search
        assert opened.best_genomes("cls_digits", "another fingerprint", 1)[0][0] == trained[0]["trees"]
    finally:
        opened.close()


def test_init_cache_without_a_cache_is_one_line(tmp_path):
    result = call_cli(
        "evolve",
        "--task",
        "cls_digits",
        "--init",
        "cache",
        "--cache",
        "off",
        "--max-explored",
        "5",
        "--out",
        str(tmp_path / "r"),
    )
    assert result.returncode == 2 and "--init cache starts from the search cache" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "r").exists()
