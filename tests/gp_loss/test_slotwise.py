"""Slot-wise search (gp_loss/engine/slotwise.py): one slot at a time on the anchor, then jointly."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import EvolutionConfig, PipelineOptions
from gp_loss.engine.evolution import AgingEvolution, Hook, Limits
from gp_loss.engine.slotwise import by_gain, first_round
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.run.runner import RunSettings, resume, start
from gp_loss.testing.tasks import TwoSlotToy

PAPER = PipelineOptions(lrp_protocol="paper")  # the toy's calibrated protocol (test_evolution.py)


class Recorder(Hook):
    def __init__(self):
        self.events = []

    def on_event(self, event, state):
        self.events.append(event)


def _search(n: int, task=None, **config) -> tuple[AgingEvolution, list[dict]]:
    task = task or TwoSlotToy()
    recorder = Recorder()
    config = {"population_size": 3, "seed": 4, "slot_search": "slotwise", **config}
    evolution = AgingEvolution(
        task, FitnessPipeline(task, PAPER), EvolutionConfig(**config), hooks=[recorder]
    )
    evolution.run(Limits(max_explored=n))
    return evolution, recorder.events


def test_the_schedule_gives_each_slot_a_turn_then_splits_the_rest_by_gain():
    assert first_round(["cls", "reg", "mask"], 0.6) == [["cls", 0.1], ["reg", 0.2], ["mask", 0.3]]
    plan = by_gain({"cls": 0.0, "reg": 0.03, "mask": 0.01}, 0.3, 0.6)
    assert [slot for slot, _ in plan] == ["reg", "mask", "cls"]
    ends = [end for _, end in plan]
    assert ends == sorted(ends) and ends[-1] == 0.6
    shares = dict(zip([s for s, _ in plan], [b - a for a, b in zip([0.3, *ends], ends)]))
    assert shares["reg"] == pytest.approx(3 * shares["mask"] - 2 * shares["cls"], rel=1e-6)
    assert shares["cls"] > 0  # no gain still gets a floor share
    # nothing gained anywhere: equal parts
    even = by_gain({"cls": -0.1, "reg": 0.0}, 0.25, 0.5)
    assert even == [["cls", 0.375], ["reg", 0.5]]


def test_slot_phases_vary_only_their_slot_on_the_anchor_then_the_search_goes_joint():
    evolution, events = _search(200)
    anchor = dict(TwoSlotToy.baselines["ce+giou"])
    assert events[0]["phase"] == "anchor" and events[0]["trees"] == anchor and events[0]["searched"] == []
    phases = [tuple(e["searched"]) for e in events[1:]]
    first_joint = phases.index(("cls", "reg"))
    assert set(phases[:first_joint]) == {("cls",), ("reg",)}
    assert set(phases[first_joint:]) == {("cls", "reg")}  # the phase never goes back
    assert 90 <= first_joint + 1 <= 110  # slot_share 0.5 of 200 explored
    for event in events[1 : first_joint + 1]:
        (slot,) = event["searched"]
        other = "reg" if slot == "cls" else "cls"
        assert event["trees"][other] == anchor[other]
    evolved = [e for e in events if e["phase"] == "evolve" and len(e["searched"]) == 1]
    assert evolved and all(e["slot"] == e["searched"][0] for e in evolved)
    # the joint phase opens with the slots' winners combined (unless a slot phase explored
    # that genome already: a slot whose best is still the anchor's tree), never the anchor again
    data = evolution.state.slotwise
    winners = {slot: data["best"][slot][0] for slot in ("cls", "reg")}
    combined = [e["trees"] for e in events if e["phase"] == "combine"]
    explored_before = [e["trees"] for e in events[: first_joint + 1]]
    assert (combined and combined[0] == winners) or winners in explored_before
    assert anchor not in combined
    assert data["anchor_fitness"] == events[0]["fitness"]


def test_a_slot_that_gains_more_gets_more_of_the_budget():
    evolution, events = _search(300, seed=2)
    data = evolution.state.slotwise
    gains = data["gains"]  # each slot's best over the anchor when the first round ended
    assert gains["reg"] > 0 == gains["cls"]  # this seed: only the box slot improved on its own
    first, second = data["plan"][2:]
    planned = {first[0]: first[1] - data["plan"][1][1], second[0]: second[1] - first[1]}
    assert first[0] == "reg" and planned["reg"] > 5 * planned["cls"]
    searched = [tuple(e["searched"]) for e in events]
    last_reg = len(searched) - 1 - searched[::-1].index(("reg",))
    assert searched.index(("cls", "reg")) > last_reg  # then the joint phase


def test_a_task_without_a_tree_baseline_is_refused_with_one_line():
    class NoBaseline(TwoSlotToy):
        baselines: ClassVar[dict] = {}

    with pytest.raises(GpLossError, match="needs a tree baseline"):
        _search(10, task=NoBaseline())


def test_auto_is_slotwise_where_the_task_has_an_anchor_and_joint_elsewhere():
    class NoBaseline(TwoSlotToy):
        baselines: ClassVar[dict] = {}

    def mode(task, **config) -> str:
        evolution = AgingEvolution(
            task, FitnessPipeline(task, PAPER), EvolutionConfig(slot_search="auto", **config)
        )
        return evolution.slot_search

    assert mode(TwoSlotToy()) == "slotwise"
    assert mode(NoBaseline()) == "joint"
    assert mode(TwoSlotToy(), random_search=True) == "joint"
    assert mode(TwoSlotToy(), init="baselines") == "joint"
    with pytest.raises(GpLossError, match="--slot-search slotwise starts from the task's anchor"):
        EvolutionConfig(slot_search="slotwise", init="cache").validate()


def test_a_single_slot_task_searches_as_before():
    from tasks import get_task

    digits = get_task("cls_digits", steps=20)
    proposed = []
    for mode in ("joint", "slotwise", "auto"):  # each seeds the random stream when built
        evolution = AgingEvolution(digits, FitnessPipeline(digits), EvolutionConfig(slot_search=mode))
        assert evolution.slotwise is None
        proposed.append(evolution.propose())
    assert proposed[0] == proposed[1] == proposed[2]


class Kill(Hook):
    """Stops the search as a kill would, right after event ``at`` was written."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_event(self, event, state):
        if event["id"] == self.at:
            raise KeyboardInterrupt


def _settings(n: int) -> RunSettings:
    evolution = EvolutionConfig(population_size=3, seed=4, slot_search="slotwise")
    return RunSettings("two_slot_toy", pipeline=PAPER, evolution=evolution, limits=Limits(max_explored=n))


def _events(path) -> list[dict]:
    lines = (path / "events.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "time")} for line in lines]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A slot-wise run to 120 candidates, never stopped."""
    path = tmp_path_factory.mktemp("slotwise") / "whole"
    start(_settings(120), path, progress=False).run()
    return path


@pytest.mark.parametrize("killed_at", [30, 95])  # in a slot phase, in the joint phase
def test_a_slotwise_run_resumes_exactly(tmp_path, whole, killed_at):
    with pytest.raises(KeyboardInterrupt):
        start(_settings(120), tmp_path / "split", hooks=[Kill(killed_at)], progress=False).run()
    resume(tmp_path / "split", progress=False).run()
    assert _events(whole) == _events(tmp_path / "split")
    assert (whole / "best.json").read_text() == (tmp_path / "split" / "best.json").read_text()
    searched = [tuple(e["searched"]) for e in _events(whole)]
    assert len(searched[killed_at]) == (1 if killed_at == 30 else 2)  # where the kill fell


def test_old_runs_resume_as_joint_searches():
    from gp_loss.run.run_directory import migrate_run_json

    assert migrate_run_json({"evolution": {"seed": 1}})["evolution"]["slot_search"] == "joint"
    assert EvolutionConfig().slot_search == "auto"  # new runs: slot-wise where the task allows
