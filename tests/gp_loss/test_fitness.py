"""The fitness pipeline: GEC, LRP, validity, dedup, switches, composability."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from gp_loss.core.baselines import get_baseline
from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import PipelineOptions
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.fitness.probe import gradient_fingerprint
from gp_loss.fitness.stages import GradientEquivalence, LossRejection, ProxyTraining
from gp_loss.testing.tasks import TwoSlotToy
from tasks import get_task

CE = get_baseline("cross_entropy").tree


@pytest.fixture(scope="module")
def task():
    return get_task("cls_digits")


def _key(gec: GradientEquivalence, tree: str) -> str:
    return gec.fingerprint(Candidate({"cls": tree}))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("add(mul(y, y_hat), square(y_hat))", "add(square(y_hat), mul(y, y_hat))"),
        ("mul(y, log(y_hat))", "mul(log(y_hat), y)"),
        ("neg(neg(mul(y, log(y_hat))))", "mul(y, log(y_hat))"),
        (CE, "neg(mul(log(y_hat), y))"),
        ("add(y, square(add(y_hat, neg(y))))", "square(add(y_hat, neg(y)))"),  # constant offset
    ],
)
def test_equivalent_pairs_share_a_key(task, a, b):
    gec = GradientEquivalence(ProxyTraining(task), task)
    assert _key(gec, a) == _key(gec, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (CE, "mul(y, log(y_hat))"),  # negation: the norms agree, the direction does not
        (CE, "square(add(y_hat, neg(y)))"),
        (CE, "add(mul(y, log(y_hat)), mul(y, log(y_hat)))"),
        ("square(add(y_hat, neg(y)))", "abs(add(y_hat, neg(y)))"),
    ],
)
def test_different_pairs_do_not(task, a, b):
    gec = GradientEquivalence(ProxyTraining(task), task)
    assert _key(gec, a) != _key(gec, b)


def test_fingerprint_has_two_significant_digits():
    grad = torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.012345, 0.0]])
    assert [k.lstrip("+-") for k in gradient_fingerprint(grad).split(",")] == [
        "5.0e+00",
        "0.0e+00",
        "1.2e-02",
    ]


def test_keys_are_deterministic_across_processes(task):
    gec = GradientEquivalence(ProxyTraining(task), task)
    trees = [CE, "square(add(y_hat, neg(y)))", "mul(tanh(y_hat), exp(y))"]
    here = [_key(gec, t) for t in trees]
    code = (
        "from tasks import get_task; from gp_loss.fitness.stages import GradientEquivalence, ProxyTraining; "
        "from gp_loss.fitness.candidate import Candidate; t = get_task('cls_digits'); "
        "g = GradientEquivalence(ProxyTraining(t), t); "
        f"print('\\n'.join(g.fingerprint(Candidate({{'cls': s}})) for s in {trees!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == here


def test_lrp_passes_known_good_and_rejects_known_bad(task):
    lrp = LossRejection(ProxyTraining(task), task)
    good = [CE, get_baseline("soft_iou").tree, get_baseline("mse").tree, get_baseline("focal").tree]
    bad = ["mul(y, log(y_hat))", "neg(square(add(y_hat, neg(y))))", "square(y_hat)", "add(y, neg(y))"]
    # pass the paper's protocol, then collapse the MLP onto one class (proxy accuracy <= 0.3)
    collapsing = ["tanh(add(y_hat, y))", "sqrt(add(y_hat, y))"]
    from gp_loss.trees.loss_module import TreeLoss

    signature = task.slots[0].signature()
    for tree in good:
        assert lrp.verdict(TreeLoss(tree, signature), "cls")[0] == "passed", tree
    for tree in bad + collapsing:
        assert lrp.verdict(TreeLoss(tree, signature), "cls")[0] == "rejected", tree
    paper = LossRejection(ProxyTraining(task), task, protocol="paper")
    for tree in collapsing:
        assert paper.verdict(TreeLoss(tree, signature), "cls")[0] == "passed", tree


def test_pipeline_outcomes_in_design_order(task):
    pipeline = FitnessPipeline(task)
    first = pipeline(Candidate({"cls": CE}, id=0))
    assert first.outcome == "trained" and first.fitness > 0.9 and first.gec_key
    assert set(first.seconds) == {"validity", "gec", "lrp", "proxy"}
    assert first.lrp_gain["cls"] >= 0.5
    dup = pipeline(Candidate({"cls": CE}, id=1))
    assert (dup.outcome, dup.reused_from, dup.fitness) == ("duplicate", 0, first.fitness)
    equiv = pipeline(Candidate({"cls": "neg(mul(log(y_hat), y))"}, id=2))
    assert (equiv.outcome, equiv.reused_from, equiv.source_outcome) == ("equivalent", 0, "trained")
    assert pipeline({"cls": "square(y_hat)"}).outcome == "invalid"  # ignores the target
    assert pipeline({"cls": "mul(y, y)"}).outcome == "invalid"  # ignores the prediction
    rejected = pipeline(Candidate({"cls": "mul(y, log(y_hat))"}, id=5))
    assert rejected.outcome == "rejected" and rejected.fitness is None and not rejected.admissible
    again = pipeline(Candidate({"cls": "neg(neg(mul(y, log(y_hat))))"}, id=6))
    assert (again.outcome, again.source_outcome, again.admissible) == ("equivalent", "rejected", False)


def test_switches_turn_stages_off(task):
    pipeline = FitnessPipeline(task, PipelineOptions(gec=False, lrp=False))
    pipeline({"cls": CE})
    assert pipeline({"cls": "neg(mul(log(y_hat), y))"}).outcome == "trained"  # no GEC: trained again
    assert pipeline({"cls": "mul(y, log(y_hat))"}).outcome == "trained"  # no LRP: trained, badly
    exploding = {"cls": "mul(y, neg(inv(mul(y_hat, y_hat))))"}  # -1/p_true^2: drives p_true to 0
    assert FitnessPipeline(task)(exploding).outcome == "rejected"  # LRP on: never trained
    stops = FitnessPipeline(task, PipelineOptions(lrp=False))
    assert stops(exploding).outcome == "diverged"
    keeps = FitnessPipeline(task, PipelineOptions(lrp=False, stop_invalid=False))
    kept = keeps(exploding)
    assert kept.outcome == "trained" and kept.fitness < 0.3  # trained to the end, into a useless net


def test_a_switched_off_stage_is_skipped_by_the_pipeline_too(task):
    pipeline = FitnessPipeline(task, PipelineOptions(lrp=False))
    pipeline.validity.enabled = False
    assert pipeline.validity not in pipeline.screening
    # ignores the target: invalid with the validity stage on, trained with it off
    assert FitnessPipeline(task, PipelineOptions(lrp=False))({"cls": "square(y_hat)"}).outcome == "invalid"
    assert pipeline({"cls": "square(y_hat)"}).outcome == "trained"


def test_a_task_without_its_target_metric_is_an_error_not_the_worst_fitness(task):
    class Forgetful(type(task)):
        def proxy_train(self, losses, *, stop_invalid=True):
            result = super().proxy_train(losses, stop_invalid=stop_invalid)
            result.metrics = {"acc": result.metrics["accuracy"]}
            return result

    with pytest.raises(GpLossError, match="not the target metric 'accuracy'"):
        ProxyTraining(Forgetful(), rungs=(1.0,))({"cls": CE})

    class ForgetfulPartWay(type(task)):
        def proxy_metrics(self, model):
            return {"acc": super().proxy_metrics(model)["accuracy"]}

    with pytest.raises(GpLossError, match="not the target metric 'accuracy'"):
        ProxyTraining(ForgetfulPartWay(), rungs=(0.5, 1.0))({"cls": CE})


def test_wrappers_compose_like_the_design_says(task):
    evaluate = GradientEquivalence(LossRejection(ProxyTraining(task)))
    assert evaluate({"cls": CE}).outcome == "trained"
    assert evaluate({"cls": "mul(y, log(y_hat))"}).outcome == "rejected"
    assert evaluate({"cls": "neg(mul(log(y_hat), y))"}).outcome == "equivalent"


def test_remember_rebuilds_caches(task):
    pipeline = FitnessPipeline(task)
    record = Evaluation(
        "trained",
        0.5,
        {"accuracy": 0.5},
        gec_key=GradientEquivalence(ProxyTraining(task), task).fingerprint(Candidate({"cls": CE})),
    )
    pipeline.record(Candidate({"cls": CE}, 7), record)
    assert pipeline({"cls": CE}).reused_from == 7
    assert pipeline({"cls": "neg(mul(log(y_hat), y))"}).fitness == 0.5  # equivalent via the replayed key


def test_multi_slot_genomes_run_per_slot_lrp_and_gec():
    toy = TwoSlotToy()
    pipeline = FitnessPipeline(toy)
    good = pipeline({"cls": CE, "reg": get_baseline("giou").tree})
    assert good.outcome == "trained" and set(good.lrp_gain) == {"cls", "reg"}
    assert "cls:" in good.gec_key and "reg:" in good.gec_key
    bad_reg = pipeline({"cls": CE, "reg": "mul(inter, inv(union))"})  # maximises the loss of IoU
    assert bad_reg.outcome == "rejected" and bad_reg.lrp_gain["reg"] < pipeline.lrp.threshold("reg")


def test_a_stage_on_its_own_times_the_result_it_ends_a_candidate_with(task):
    from gp_loss.fitness.stages import Validity

    ended = Validity(ProxyTraining(task))({"cls": "square(y_hat)"})  # ignores the target
    assert ended.outcome == "invalid" and set(ended.seconds) == {"validity"}
