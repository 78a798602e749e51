"""cls_digits: data split, probe batch, proxy training, stop-invalid."""

from __future__ import annotations

import pytest
import torch

from gp_loss.core.baselines import get_baseline
from gp_loss.core.errors import GpLossError
from gp_loss.trees.loss_module import TreeLoss
from tasks import TASKS, get_task


@pytest.fixture(scope="module")
def task():
    return get_task("cls_digits")


def _loss(task, tree):
    return {"cls": TreeLoss(tree, task.slots[0].signature())}


def test_registry_lists_known_names():
    assert "cls_digits" in TASKS
    with pytest.raises(GpLossError, match="unknown task 'cls_digitz'; known: cls_digits"):
        get_task("cls_digitz")
    with pytest.raises(GpLossError, match="no metric"):
        get_task("cls_digits", metric="mIoU")


def test_split_is_disjoint_stratified_and_fixed(task):
    parts = [set(task.splits[name].tolist()) for name in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == len(task.y) == 1797
    for name in ("val", "test"):
        counts = torch.bincount(task.y[task.splits[name]], minlength=10)
        assert counts.min() >= 30
    again = get_task("cls_digits", seed=5)
    assert all(torch.equal(task.splits[k], again.splits[k]) for k in task.splits)


def test_probe_batch_is_deterministic_random_init_predictions(task):
    a, b = task.probe_batch("cls"), task.probe_batch("cls")
    assert torch.equal(a.predictions, b.predictions) and torch.equal(a.targets, b.targets)
    assert a.predictions.shape == (8, 10)
    assert task.probe_metric("cls", a.predictions, a.targets).mean() < 0.5  # untrained


def test_proxy_training_separates_good_and_bad_losses(task):
    good = task.proxy_train(_loss(task, get_baseline("cross_entropy").tree))
    bad = task.proxy_train(_loss(task, "mul(y, log(y_hat))"))
    assert good.outcome == "trained" and good.metrics["accuracy"] > 0.9
    assert bad.metrics["accuracy"] < 0.3
    again = task.proxy_train(_loss(task, get_baseline("cross_entropy").tree))
    assert again.metrics == good.metrics  # fixed seed: deterministic


def test_stop_invalid_stops_at_the_first_non_finite_loss(task):
    calls = {"n": 0}

    def poisoned(logits, labels):
        calls["n"] += 1
        value = torch.nn.functional.cross_entropy(logits, labels)
        return value * float("nan") if calls["n"] > 5 else value

    result = task.proxy_train({"cls": poisoned}, stop_invalid=True)
    assert result.outcome == "diverged" and result.steps == 5 and calls["n"] == 6
    calls["n"] = 0
    kept = task.proxy_train({"cls": poisoned}, stop_invalid=False)
    assert kept.outcome == "trained" and kept.steps == task.steps


def test_exploding_loss_counts_as_diverged(task):
    result = task.proxy_train(_loss(task, "neg(inv(mul(y_hat, y_hat)))"))
    assert result.outcome == "diverged"


def test_final_evaluate_reports_test_accuracy(task):
    metrics = task.final_evaluate(_loss(task, get_baseline("cross_entropy").tree), seed=1)
    assert 0.9 < metrics["accuracy"] <= 1.0
