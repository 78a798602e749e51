"""Aging evolution: reproducibility, population rules, limits."""

from __future__ import annotations

import json

import pytest

from gp_loss.core.settings import EvolutionConfig, PipelineOptions
from gp_loss.engine.evolution import AgingEvolution, Hook, Limits
from gp_loss.engine.member import Member
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.testing.tasks import TwoSlotToy
from tasks import get_task

VOLATILE = ("seconds", "time")


class Recorder(Hook):
    def __init__(self):
        self.events, self.ended = [], None

    def on_event(self, event, state):
        self.events.append(event)

    def on_end(self, state, reason):
        self.ended = reason


def _stable(events):
    return [{k: v for k, v in e.items() if k not in VOLATILE} for e in events]


def _run(task, n, options: PipelineOptions | None = None, max_trained: int | None = None, **config):
    recorder = Recorder()
    pipeline = FitnessPipeline(task, options)
    evolution = AgingEvolution(task, pipeline, EvolutionConfig(**config), hooks=[recorder])
    state = evolution.run(Limits(max_explored=n, max_trained=max_trained))
    return state, recorder


@pytest.fixture(scope="module")
def digits():
    return get_task("cls_digits", steps=60)


def test_same_seed_same_run(digits):
    _a, rec_a = _run(digits, 120, population_size=4, seed=3)
    _b, rec_b = _run(digits, 120, population_size=4, seed=3)
    assert _stable(rec_a.events) == _stable(rec_b.events)
    _c, rec_c = _run(digits, 120, population_size=4, seed=4)
    assert _stable(rec_a.events) != _stable(rec_c.events)


def test_population_rules(digits):
    state, rec = _run(digits, 250, population_size=4, seed=1)
    assert rec.ended == "explored 250 losses" and state.explored == 250
    entered = {e["id"] for e in rec.events if e["entered"]}
    for event in rec.events:
        if event["outcome"] in ("invalid", "rejected") or event.get("source_outcome") in (
            "invalid",
            "rejected",
        ):
            assert event["id"] not in entered
    assert len(state.population) == 4
    assert {m.id for m in state.population} <= entered
    # aging: the survivors are the four most recent admissible candidates
    assert [m.id for m in state.population] == sorted(entered)[-4:]
    evolved = [e for e in rec.events if e["phase"] == "evolve"]
    assert evolved, "the population never filled"
    for event in evolved:
        assert event["parent"] in entered and event["mutation"] in (
            "insert",
            "shrink",
            "replace",
            "subtree",
            "crossover",
        )
    assert sum(state.counts.values()) == 250
    assert state.best["fitness"] == max(e["fitness"] for e in rec.events if e["outcome"] == "trained")


def test_replace_worst_keeps_the_best(digits):
    state, rec = _run(digits, 250, population_size=4, seed=1, replace="worst")
    admitted = sorted((e["fitness"] for e in rec.events if e["entered"]), reverse=True)
    assert sorted((m.fitness for m in state.population), reverse=True) == admitted[:4]


def test_random_search_never_mutates(digits):
    _state, rec = _run(digits, 80, population_size=4, seed=1, random_search=True)
    assert all(e["phase"] == "random" and e["parent"] is None for e in rec.events)


def test_children_come_from_the_mutations_named_and_old_runs_keep_deaps_four(digits):
    config = EvolutionConfig(population_size=2, crossover_prob=0.0, mutations=("ratio",))
    evolution = AgingEvolution(digits, FitnessPipeline(digits), config)
    parents = ("neg(mul(y, log(y_hat)))", "square(add(y_hat, neg(y)))")
    evolution.state.population = [Member(i, {"cls": tree}, 0.5) for i, tree in enumerate(parents)]
    for _ in range(20):
        genome, meta = evolution.evolve_child(["cls"])
        assert meta["mutation"] == "ratio" and "inv(mean_nhw(" in genome["cls"]
    data = config.to_json()
    assert EvolutionConfig.from_json(data).mutations == ("ratio",)
    del data["mutations"]  # a run.json from before the setting resumes with DEAP's four
    assert EvolutionConfig.from_json(data).mutations == ("insert", "shrink", "replace", "subtree")


def test_limits():
    limits = Limits(budget=10.0, max_trained=3)
    from gp_loss.engine.evolution import SearchState

    assert limits.reached(SearchState(elapsed=10.5)) == "time budget spent"
    assert limits.reached(SearchState(trained=3)) == "trained 3 losses"
    assert limits.reached(SearchState(trained=2, elapsed=1.0)) is None


def test_multi_slot_mutation_touches_one_slot():
    toy = TwoSlotToy()
    # the toy "trains" free logits and boxes: the paper's protocol is the one that predicts it,
    # and it lets enough random genomes through to fill a population early (28 draws, this seed)
    paper = PipelineOptions(lrp_protocol="paper")
    _state, rec = _run(toy, 120, paper, population_size=2, seed=2, init_depth=(2, 4), slot_search="joint")
    by_id = {e["id"]: e for e in rec.events}
    evolved = [e for e in rec.events if e["phase"] == "evolve"]
    assert len(evolved) > 50
    for event in evolved:
        parent = by_id[event["parent"]]["trees"]
        changed = [slot for slot in ("cls", "reg") if event["trees"][slot] != parent[slot]]
        assert changed == [event["slot"]]


def _draws_to_fill(per_slot_init: bool, size: int = 3, limit: int = 1500) -> tuple[int, list[dict]]:
    """Draws until the population is full (the first evolved candidate's id). The run stops soon
    after: ``size`` trainings fill the population, a few more are evolved ones."""
    toy = TwoSlotToy()
    config = {
        "population_size": size,
        "seed": 4,
        "init_depth": (1, 3),
        "per_slot_init": per_slot_init,
        "slot_search": "joint",  # the joint search's own initialisation
    }
    _state, rec = _run(toy, limit, PipelineOptions(lrp_protocol="paper"), max_trained=size + 2, **config)
    first_evolved = next(e["id"] for e in rec.events if e["phase"] == "evolve")
    return first_evolved, rec.events


def test_per_slot_initialisation_fills_the_population_in_fewer_draws():
    joint, _ = _draws_to_fill(per_slot_init=False)
    per_slot, events = _draws_to_fill(per_slot_init=True)
    assert per_slot < joint, (per_slot, joint)
    # once a slot has a tree that passed its LRP, initial genomes reuse it for that slot
    passed = {slot: set() for slot in ("cls", "reg")}
    reused = 0
    for event in events[:per_slot]:
        reused += any(event["trees"][slot] in passed[slot] for slot in passed)
        for slot in event["passed_slots"] if event["outcome"] != "trained" else passed:
            passed[slot].add(event["trees"][slot])
    assert reused > 0
    admitted = [e for e in events[:per_slot] if e["entered"]]
    assert len(admitted) == 3 and all(set(e["passed_slots"]) == {"cls", "reg"} for e in admitted)


@pytest.mark.slow
def test_per_slot_initialisation_resumes_exactly(tmp_path):
    from gp_loss.run.runner import RunSettings, resume, start

    def settings(n: int) -> RunSettings:
        return RunSettings(
            "two_slot_toy",
            pipeline=PipelineOptions(lrp_protocol="paper"),
            evolution=EvolutionConfig(population_size=3, seed=4, slot_search="joint"),
            limits=Limits(max_explored=n),
        )

    start(settings(160), tmp_path / "whole", progress=False).run()
    start(settings(45), tmp_path / "split", progress=False).run()
    resume(tmp_path / "split", max_explored=160, progress=False).run()

    def events(path):
        lines = (path / "events.jsonl").read_text().splitlines()
        return _stable([json.loads(line) for line in lines])

    assert events(tmp_path / "whole") == events(tmp_path / "split")
    checkpoint = json.loads((tmp_path / "split" / "checkpoint.json").read_text())
    assert checkpoint["survivors"]["cls"] and checkpoint["survivors"]["reg"]
