"""Slot weights (1, C, 10): written as a tree prefix, searched by the weight mutation, recorded in
best.json, applied by every export, checked against torch's own losses."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gp_loss import load_loss
from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import EvolutionConfig, PipelineOptions
from gp_loss.core.signature import SlotSignature
from gp_loss.engine.evolution import AgingEvolution, Hook, Limits
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.testing.tasks import TwoSlotToy
from gp_loss.trees import symbolic
from gp_loss.trees.best_json import read_best
from gp_loss.trees.loss_module import TreeLoss
from gp_loss.trees.parse import parse_tree

CE = "neg(mul(y, log(y_hat)))"
GIOU = "neg(add(mul(inter, inv(union)), mul(union, inv(enclose))))"
CLASSES = SlotSignature("softmax_onehot", spatial=True)
BOXES = SlotSignature("box_iou_areas", spatial=False)


def test_a_weight_is_a_prefix_of_the_tree_string_and_survives_variation():
    tree = parse_tree(f"C  *{CE}", CLASSES)
    assert tree.weight == "C" and str(tree) == f"C * {CE}" and len(tree) == 5
    assert parse_tree(CE, CLASSES).weight == "1" and str(parse_tree(f"1 * {CE}", CLASSES)) == CE
    from gp_loss.trees.variation import crossover, mutate

    child, _ = mutate(tree, CLASSES)
    assert child.weight == "C"
    one, _ = crossover(tree, parse_tree(f"10 * {CE}", CLASSES))
    assert one.weight == "C"
    with pytest.raises(GpLossError, match=r"unknown weight '3'.*one of 1, C, 10"):
        parse_tree(f"3 * {CE}", CLASSES)


@pytest.mark.parametrize("shape", [(8, 11), (2, 5, 6, 6)])
def test_c_times_the_cross_entropy_tree_is_torchs_cross_entropy(shape):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=generator)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator)
    assert torch.allclose(TreeLoss(f"C * {CE}", CLASSES)(logits, labels), F.cross_entropy(logits, labels))
    plain = TreeLoss(CE, CLASSES)(logits, labels)
    assert torch.allclose(TreeLoss(f"10 * {CE}", CLASSES)(logits, labels), 10 * plain)


def _best_json(path, reg_entry: dict) -> None:
    data = {
        "format": "gp-loss/1",
        "task": "det_coco",
        "metric": "AP",
        "fitness": 0.5,
        "slots": {"cls": {"tree": f"C * {CE}", "adapter": "softmax_onehot"}, "reg": reg_entry},
    }
    path.write_text(json.dumps(data))


def test_best_json_records_the_weight_and_every_export_applies_it(tmp_path):
    _best_json(tmp_path / "best.json", {"tree": GIOU, "adapter": "box_iou_areas", "weight": "10"})
    best = read_best(tmp_path / "best.json")  # a weight given apart from the tree is applied
    assert best.slots["reg"].tree == f"10 * {GIOU}" and best.slots["reg"].weight == "10"
    assert best.to_json()["slots"]["cls"] == {"tree": f"C * {CE}", "adapter": "softmax_onehot", "weight": "C"}
    losses = load_loss(tmp_path / "best.json")
    generator = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(6, 9, generator=generator), torch.randint(0, 9, (6,), generator=generator)
    pred, target = torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.tensor([[1.0, 1.0, 5.0, 5.0]])
    assert torch.allclose(losses["cls"](logits, labels), F.cross_entropy(logits, labels))
    assert torch.allclose(losses["reg"](pred, target), 10 * TreeLoss(GIOU, BOXES)(pred, target))
    from gp_loss.export.bundle import exported_program
    from gp_loss.export.torchscript import export_torchscript

    export_torchscript(best, tmp_path / "loss.pt")
    scripted = torch.jit.load(str(tmp_path / "loss.pt"))
    for module in (scripted, exported_program(best).module()):  # the class count stays dynamic
        cls, reg = module(logits, labels, pred, target)
        assert torch.allclose(cls, F.cross_entropy(logits, labels)) and torch.allclose(
            reg, losses["reg"](pred, target)
        )
    latex = symbolic.to_latex(parse_tree(best.slots["cls"].tree, CLASSES), CLASSES.adapter_class)
    assert "C" in latex


def test_an_old_best_json_loads_as_weight_one_and_a_contradiction_is_one_line(tmp_path):
    _best_json(tmp_path / "old.json", {"tree": GIOU, "adapter": "box_iou_areas"})
    assert read_best(tmp_path / "old.json").slots["reg"].weight == "1"
    _best_json(tmp_path / "bad.json", {"tree": f"C * {GIOU}", "adapter": "box_iou_areas", "weight": "10"})
    with pytest.raises(GpLossError, match="slot 'reg': 'weight' '10' does not match the tree's weight 'C'"):
        read_best(tmp_path / "bad.json")


class Recorder(Hook):
    def __init__(self):
        self.events = []

    def on_event(self, event, state):
        self.events.append(event)


def test_the_search_mutates_one_slots_weight_on_multi_slot_tasks_only():
    toy = TwoSlotToy()
    recorder = Recorder()
    config = EvolutionConfig(population_size=2, seed=2, init_depth=(2, 4), weight_mutation=0.3)
    pipeline = FitnessPipeline(toy, PipelineOptions(lrp_protocol="paper"))
    AgingEvolution(toy, pipeline, config, hooks=[recorder]).run(Limits(max_explored=150))
    by_id = {e["id"]: e for e in recorder.events}
    weighed = [e for e in recorder.events if e["mutation"] == "weight"]
    assert len(weighed) > 5
    for event in weighed:
        parent, slot = by_id[event["parent"]]["trees"], event["slot"]
        signature = BOXES if slot == "reg" else SlotSignature("softmax_onehot", spatial=False)
        child_tree, parent_tree = (
            parse_tree(event["trees"][slot], signature),
            parse_tree(parent[slot], signature),
        )
        assert str(child_tree).split(" * ")[-1] == str(parent_tree).split(" * ")[-1]
        assert child_tree.weight != parent_tree.weight
        assert all(event["trees"][s] == parent[s] for s in parent if s != slot)


def test_single_slot_searches_and_old_runs_never_draw_a_weight():
    from gp_loss.run.run_directory import migrate_run_json
    from tasks import get_task

    digits = get_task("cls_digits", steps=20)
    recorder = Recorder()
    config = EvolutionConfig(population_size=2, weight_mutation=1.0)
    AgingEvolution(digits, FitnessPipeline(digits), config, hooks=[recorder]).run(Limits(max_explored=60))
    assert not any(e["mutation"] == "weight" for e in recorder.events)
    assert migrate_run_json({"evolution": {}})["evolution"]["weight_mutation"] == 0.0
