"""The Loss-Rejection Protocol's far-off start: a loss must still pull a network back that starts
far from its targets (issue 25's diabetes case: a tanh of the mean r^4 has no gradient there)."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_diabetes

from gp_loss.adapters import get_adapter
from gp_loss.adapters.base import FAR_OFFSET
from gp_loss.fitness.stages import LossRejection, ProxyTraining
from gp_loss.trees.loss_module import TreeLoss
from tasks import get_task
from tasks.generic import GenericTask

#: what a 35-second search on the diabetes data returned: its gradient is exactly 0 once the
#: mean of r^4 passes about 9
SATURATING = "mean_nhw(square(tanh(mean_nhw(square(square(r))))))"


@pytest.fixture(scope="module")
def diabetes_lrp() -> LossRejection:
    x, y = load_diabetes(return_X_y=True)
    x = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
    y = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)
    task = GenericTask(
        lambda: torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)),
        (x[:300], y[:300]),
        (x[300:], y[300:]),
        adapter="regression",
        name="diabetes",
        steps=5,
    )
    return LossRejection(ProxyTraining(task), task)


def test_far_start_misses_every_valid_target_by_the_stated_offset():
    target = torch.tensor([[0.0, 2.0], [float("nan"), -2.0]])
    start = get_adapter("regression").far_start(torch.zeros(2, 2), target)
    spread = float(target[~target.isnan()].std())
    miss = (start - target).abs()
    assert torch.allclose(miss[~target.isnan()], torch.full((3,), FAR_OFFSET * (spread + 1)))
    assert start[1, 0] == 0  # a missing target: a finite prediction the loss ignores
    assert get_adapter("softmax_onehot").far_start(torch.zeros(2, 3), torch.tensor([0, 1])) is None


def test_the_saturating_diabetes_loss_is_rejected_and_the_references_pass(diabetes_lrp):
    slot = diabetes_lrp.task.slots[0]
    outcome, reason = diabetes_lrp.far_problem(TreeLoss.for_slot(slot, SATURATING), slot.name)
    assert outcome == "rejected" and "far-off start" in reason
    assert diabetes_lrp.verdict(TreeLoss.for_slot(slot, SATURATING), slot.name)[0] == "rejected"
    # pulls the wrong way: minimal far from the targets
    assert (
        diabetes_lrp.far_problem(TreeLoss.for_slot(slot, "exp(neg(square(r)))"), slot.name)[0] == "rejected"
    )
    for good in ("square(r)", "abs(r)", "sqrt(add(square(r), y))", "log(add(square(r), abs(r)))"):
        assert diabetes_lrp.far_problem(TreeLoss.for_slot(slot, good), slot.name) is None, good


def test_heatmap_losses_keep_their_pull_from_a_far_start():
    task = get_task("pose_coco")
    lrp = LossRejection(ProxyTraining(task), task)
    slot = task.slots[0]
    for good in ("mean_nhw(square(r))", "abs(r)", "add(square(r), mul(y, square(r)))"):
        assert lrp.far_problem(TreeLoss.for_slot(slot, good), "hm") is None, good
    assert lrp.far_problem(TreeLoss.for_slot(slot, "tanh(square(r))"), "hm")[0] == "rejected"
