"""The Loss-Rejection Protocols: ordering check, shared head, settings, and the training panel."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F

from gp_loss.adapters import get_adapter
from gp_loss.bench import lrp_training
from gp_loss.core.baselines import get_baseline
from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.fitness.rejection import (
    free_prediction_gain,
    misorders,
    normalise,
    trainable_head_gain,
)
from gp_loss.fitness.stages import LossRejection, ProxyTraining
from gp_loss.testing.tasks import TwoSlotToy
from gp_loss.trees.loss_module import TreeLoss
from tasks import get_task

SOFTMAX = SlotSignature("softmax_onehot")


def rewards_confident_mistakes(loss, logits: torch.Tensor, targets: torch.Tensor) -> bool | None:
    """The ordering check on class logits, with softmax_onehot's probes."""
    return misorders(loss, get_adapter("softmax_onehot").ordering_probes(logits, targets), targets)


def _accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (predictions.argmax(1) == targets).float()


def test_ordering_check_on_hand_computed_losses():
    targets = torch.tensor([0, 1, 2, 0])
    logits = torch.zeros(4, 3)

    def ce(x, t):
        return F.cross_entropy(x, t)

    def concave(x, t):  # sum_c sqrt(p_c + y_c): prefers any confident class to a uniform guess
        y = F.one_hot(t, 3).float()
        return (x.softmax(1) + y).sqrt().sum(1).mean()

    def majority(x, t):  # -p of each class weighted by its batch frequency: follows the majority
        freq = F.one_hot(t, 3).float().mean(0)
        return -(x.softmax(1) * freq).sum(1).mean()

    assert rewards_confident_mistakes(ce, logits, targets) is False
    assert rewards_confident_mistakes(concave, logits, targets) is True
    assert rewards_confident_mistakes(majority, logits, targets) is True
    # by hand for the concave loss (margin 10: the other classes keep p ~ 4.5e-5, sqrt ~ 0.007):
    # right ~ sqrt(2) = 1.41, confident wrong ~ sqrt(1) + sqrt(1) = 2, uniform (p = 1/3)
    # sqrt(4/3) + 2 sqrt(1/3) = 2.31: the mistake costs less than the uninformed guess
    hot = F.one_hot(targets, 3).float() * 10
    wrong = F.one_hot((targets + 1) % 3, 3).float() * 10
    assert float(concave(hot, targets)) == pytest.approx(math.sqrt(2), abs=0.02)
    assert float(concave(wrong, targets)) == pytest.approx(2.0, abs=0.02)
    assert float(concave(logits, targets)) == pytest.approx(math.sqrt(4 / 3) + 2 * math.sqrt(1 / 3))


def test_ordering_check_keeps_ignored_labels_ignored():
    targets = torch.tensor([[[0, 255], [1, 1]]])  # (N, H, W) with one void pixel
    logits = torch.zeros(1, 2, 2, 2)
    loss = TreeLoss(get_baseline("cross_entropy").tree, SlotSignature("softmax_onehot", spatial=True))
    assert rewards_confident_mistakes(loss, logits, targets) is False
    assert rewards_confident_mistakes(lambda x, t: x.sum() * float("nan"), logits, targets) is None


def test_shared_head_learns_with_a_good_loss_and_not_with_its_negation():
    gen = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 3, (64,), generator=gen)
    features = F.one_hot(targets, 3).float() + 0.3 * torch.randn(64, 3, generator=gen)  # separable
    ce = TreeLoss(get_baseline("cross_entropy").tree, SOFTMAX)
    anti = TreeLoss(f"neg({get_baseline('cross_entropy').tree})", SOFTMAX)
    good = trainable_head_gain(ce, features, targets, 3, _accuracy, 50, 0.05, hidden=16)
    bad = trainable_head_gain(anti, features, targets, 3, _accuracy, 50, 0.05, hidden=16)
    assert good is not None and bad is not None
    assert good > 0.3 and bad < 0.05
    again = trainable_head_gain(ce, features, targets, 3, _accuracy, 50, 0.05, hidden=16)
    assert again == good  # seeded head: same start, same result
    nan = trainable_head_gain(lambda x, t: x.sum() * float("nan"), features, targets, 3, _accuracy, 5, 0.1)
    assert nan is None


def test_free_prediction_gain_is_the_papers_protocol():
    targets = torch.tensor([0, 1, 2, 1])
    start = torch.zeros(4, 3)
    start[:, 0] = 1.0  # every sample predicts class 0: one of four correct
    ce = TreeLoss(get_baseline("cross_entropy").tree, SOFTMAX)
    assert free_prediction_gain(ce, start, targets, _accuracy, 50, 0.1) == pytest.approx(0.75)
    assert free_prediction_gain(lambda x, t: (x * 0).sum(), start, targets, _accuracy, 5, 0.1) == 0.0


def test_normalise_per_channel_or_globally():
    features = torch.tensor([[1.0, 100.0], [3.0, 300.0]])
    z = normalise(features, per_channel=True)
    assert torch.allclose(z.mean(0), torch.zeros(2)) and torch.allclose(z.std(0), torch.ones(2), atol=1e-3)
    scaled = normalise(features, per_channel=False)
    assert torch.allclose(scaled / scaled[0, 0], features / features[0, 0])  # shared structure kept


def test_settings_follow_protocol_and_task_and_unknown_protocol_is_an_error():
    task = get_task("cls_digits")
    shared = LossRejection(ProxyTraining(task), task).settings("cls")
    paper = LossRejection(ProxyTraining(task), task, protocol="paper", eta=0.7).settings("cls")
    assert (shared.protocol, shared.lr, shared.hidden) == ("shared", 0.01, 64)
    assert (paper.protocol, paper.lr, paper.eta, paper.hidden) == ("paper", 0.1, 0.7, 0)
    # a task with a flat (legacy) lrp_defaults dict: both protocols use its free-prediction values
    toy = TwoSlotToy()
    assert LossRejection(ProxyTraining(toy), toy).settings("reg").eta == 0.05
    with pytest.raises(GpLossError, match="unknown LRP protocol 'strict'"):
        LossRejection(ProxyTraining(task), task, protocol="strict")


@pytest.mark.slow
def test_training_panel_is_reproducible_with_a_seed():
    task = get_task("cls_digits", steps=80)
    first = lrp_training.build_panel(task, n=2, seed=3)
    second = lrp_training.build_panel(get_task("cls_digits", steps=80), n=2, seed=3)
    key = [(e.kind, e.tree, e.verdicts["shared"], e.verdicts["paper"]) for e in first.entries]
    assert key == [(e.kind, e.tree, e.verdicts["shared"], e.verdicts["paper"]) for e in second.entries]
    randoms = [e for e in first.entries if e.kind == "random"]
    for protocol in ("shared", "paper"):
        assert sum(e.verdicts[protocol] == "pass" for e in randoms) >= 2
        assert sum(e.verdicts[protocol] != "pass" for e in randoms) >= 2
    subset = lrp_training.Panel([e for e in first.entries if e.kind != "bad"][:4], first.draw_ms)
    base = lrp_training.train_panel(task, {"steps": 80}, subset.entries)
    fitness = [e.fitness for e in subset.entries]
    assert lrp_training.train_panel(task, {"steps": 80}, subset.entries) == base
    assert [e.fitness for e in subset.entries] == fitness
    text = lrp_training.report(task, subset, base, 0.5, 2, 3)
    assert "| shared | cls |" in text and "| paper | cls |" in text and f"{base:.4f}" in text


def test_protocol_is_stored_in_run_json_and_old_runs_resume_with_the_papers():
    from gp_loss.core.settings import PipelineOptions
    from gp_loss.run.runner import RunSettings

    fresh = RunSettings("cls_digits", pipeline=PipelineOptions(lrp_protocol="paper")).to_json()
    assert RunSettings.from_json(fresh).pipeline.lrp_protocol == "paper"
    assert RunSettings.from_json(RunSettings("cls_digits").to_json()).pipeline.lrp_protocol == "shared"
    from gp_loss.run.run_directory import migrate_run_json

    before_this_change = {"task": "cls_digits", "pipeline": {"gec": True, "lrp": True, "lrp_eta": None}}
    assert RunSettings.from_json(migrate_run_json(before_this_change)).pipeline.lrp_protocol == "paper"


def test_slot_verdicts_are_kept_per_tree():
    task = get_task("cls_digits")
    lrp = LossRejection(ProxyTraining(task), task)
    ce = TreeLoss(get_baseline("cross_entropy").tree, SOFTMAX)
    first = lrp.verdict(ce, "cls")
    assert lrp.verdict(TreeLoss(get_baseline("cross_entropy").tree, SOFTMAX), "cls") is first
    assert lrp.judge(ce, "cls") == first  # deterministic: the cache changes no verdict


def test_cli_offers_exactly_the_protocols():
    from gp_loss.commands.bench import bench_lrp
    from gp_loss.commands.evolve import evolve_cmd
    from gp_loss.core.settings import PROTOCOLS

    for command, name in ((evolve_cmd, "lrp"), (bench_lrp, "protocol")):
        (option,) = [p for p in command.params if p.name == name]
        assert tuple(option.type.choices) == PROTOCOLS and option.default == PROTOCOLS[0]


def test_gradient_scale_bound_needs_a_tree_baseline_and_rejects_a_dwarfing_gradient():
    class Bounded(TwoSlotToy):
        lrp_defaults: ClassVar[dict] = {
            "shared": {"steps": 30, "lr": 0.1, "eta": 0.05, "max_grad_ratio": 100}
        }

    bounded = Bounded()
    lrp = LossRejection(ProxyTraining(bounded), bounded)
    reg = bounded.slot("reg").signature()
    giou = get_baseline("giou").tree
    assert lrp.gradient_scale(TreeLoss(giou, reg), "reg") == pytest.approx(1.0)
    # -(union * inter) works in px^4 against GIoU's ratios: its gradient is ~3000x GIoU's here
    outcome, _, reason = lrp.verdict(TreeLoss("mul(union, neg(inter))", reg), "reg")
    assert outcome == "rejected" and "the reference baseline's" in reason
    assert lrp.verdict(TreeLoss(giou, reg), "reg")[0] == "passed"

    class Treeless(Bounded):
        baselines: ClassVar[dict] = {}

    treeless = Treeless()
    with pytest.raises(GpLossError, match="no tree baseline for slot 'reg'"):
        LossRejection(ProxyTraining(treeless), treeless).verdict(TreeLoss(giou, reg), "reg")
