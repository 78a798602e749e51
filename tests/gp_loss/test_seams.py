"""Bugs at the engine's seams, each with the behaviour that was wrong before its fix."""

from __future__ import annotations

import io
import os
import queue

import pytest
import torch

from gp_loss.core.baselines import get_baseline
from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.engine.evolution import Limits, SearchState
from gp_loss.engine.progress import ProgressPrinter
from gp_loss.testing.tasks import TwoSlotToy
from gp_loss.trees.best_json import parse_best, read_best, write_best
from gp_loss.trees.loss_module import TreeLoss, load_loss

CE = get_baseline("cross_entropy").tree


def test_progress_line_counts_failed_evaluations():
    state = SearchState()
    state.counts["failed"] = 2
    state.counts["trained"] = 1
    line = ProgressPrinter(Limits(), "score", stream=io.StringIO()).line(state)
    assert "fail 2" in line and "train 1" in line


def test_toolbox_ships_a_task_objects_options_to_process_workers(tmp_path):
    from gp_loss.toolbox import make_toolbox

    task = TwoSlotToy(seed=3, pid_dir=str(tmp_path))  # an option the task's defaults do not have
    toolbox = make_toolbox(task, backend="process", workers=1)
    try:
        good = {"cls": CE, "reg": get_baseline("giou").tree}
        (fitness,) = toolbox.map(toolbox.evaluate, [good])
    finally:
        toolbox.close()
    marks = list(tmp_path.iterdir())
    assert len(marks) == 1 and int(marks[0].read_text()) != os.getpid()  # trained in the worker
    assert fitness[0] > 0


class Unregistered(TwoSlotToy):
    """Not the class registered as ``two_slot_toy``: workers get the object itself, pickled."""


def test_a_task_not_rebuilt_by_name_travels_pickled_or_is_refused_with_one_line(tmp_path):
    from gp_loss.toolbox import make_toolbox, task_worker_spec

    assert task_worker_spec(TwoSlotToy(seed=1), {}, 1).task_pickle == ""  # rebuilt by name
    assert task_worker_spec(Unregistered(seed=1), {}, 1).task_pickle != ""

    class Local(TwoSlotToy):  # defined in a function: pickle cannot find it again
        pass

    with pytest.raises(GpLossError, match="cannot be sent to workers"):
        make_toolbox(Local(), backend="process", workers=1)
    toolbox = make_toolbox(Unregistered(pid_dir=str(tmp_path)), backend="process", workers=1)
    try:
        (fitness,) = toolbox.map(toolbox.evaluate, [{"cls": CE, "reg": get_baseline("giou").tree}])
    finally:
        toolbox.close()
    assert fitness[0] > 0 and len(list(tmp_path.iterdir())) == 1


def test_a_worker_without_a_free_gpu_slot_says_which_gpu_it_shares(monkeypatch, capsys):
    from gp_loss.execution.worker import init_process_worker

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    empty: queue.Queue = queue.Queue()
    init_process_worker(1, empty, ["1", "2"])
    device = os.environ["CUDA_VISIBLE_DEVICES"]
    assert device in ("1", "2")  # before: silently "0", a GPU no slot named
    assert f"shares GPU {device}" in capsys.readouterr().err


def test_adapter_options_reach_the_loss_best_json_and_the_export():
    signature = SlotSignature("softmax_onehot")
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 3, 0])
    zero_ignored = TreeLoss(CE, signature, {"ignore_index": 0})
    keep = labels != 0
    # the CE tree is F.cross_entropy / C over the kept labels
    expected = torch.nn.functional.cross_entropy(logits[keep], labels[keep]) / 4
    assert torch.allclose(zero_ignored(logits, labels), expected)
    best = parse_best(
        {
            "format": "gp-loss/1",
            "slots": {
                "cls": {"tree": CE, "adapter": "softmax_onehot", "adapter_options": {"ignore_index": 0}}
            },
        }
    )
    module = load_loss(best)
    assert module.ignore_index == 0 and torch.allclose(module(logits, labels), expected)
    with pytest.raises(GpLossError, match="no option 'ignore'"):
        parse_best(
            {
                "format": "gp-loss/1",
                "slots": {"cls": {"tree": CE, "adapter": "softmax_onehot", "adapter_options": {"ignore": 0}}},
            }
        )


def test_best_json_from_before_adapter_options_still_loads(tmp_path):
    old = tmp_path / "best.json"
    old.write_text(
        '{"format": "gp-loss/1", "task": "cls_digits", "metric": "accuracy", "fitness": 0.9,'
        ' "slots": {"cls": {"tree": "neg(mul(y, log(y_hat)))", "adapter": "softmax_onehot"}}}'
    )
    best = read_best(old)
    assert best.slots["cls"].options == {} and load_loss(best).ignore_index == 255
    write_best(tmp_path / "again.json", best)  # written back unchanged: no options entry
    assert "adapter_options" not in (tmp_path / "again.json").read_text()


def test_an_unknown_adapter_is_an_error_not_box_areas():
    with pytest.raises(
        GpLossError, match=r"unknown adapter 'softmax'; known: box_iou_areas, (.*, )?softmax_onehot"
    ):
        SlotSignature("softmax")
