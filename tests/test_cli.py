"""The command line: help, tasks, export and one-line errors with exit code 2."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python cli.py ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, capture_output=True, text=True
    )


def call_cli(*args: str) -> subprocess.CompletedProcess:
    """``cli.main(ARGS)`` in this process, with its output captured: what ``python cli.py``
    runs, without the seconds a fresh interpreter spends importing torch and the tasks. For
    every command that needs no process of its own (a test that kills one, or runs one beside
    another, keeps :func:`run_cli`); the torch thread count a search or training sets for itself
    is put back, so later tests run as they would alone. An exception that escapes ``main``
    fails the test as a traceback would. ``test_one_line_errors_match_in_a_process_of_their_own``
    keeps the two ways in step."""
    import torch

    import cli

    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(list(args))
    finally:
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["cli.py", *args], code, out.getvalue(), err.getvalue())


def test_help_lists_commands():
    done = run_cli("--help")
    assert done.returncode == 0
    for command in ("tasks", "export", "bench"):
        assert command in done.stdout


def test_tasks_lists_registered_tasks():
    done = call_cli("tasks", "--json")
    assert done.returncode == 0
    infos = {t["name"]: t for t in json.loads(done.stdout)}
    assert infos["cls_digits"]["slots"]["cls"]["adapter"] == "softmax_onehot"
    assert infos["cls_digits"]["metrics"] == ["accuracy"]
    assert infos["det_coco"]["slots"]["reg"]["adapter"] == "box_iou_areas"
    assert infos["det_coco"]["metrics"] == ["AP", "AP50", "AP75"]
    assert infos["seg_voc"]["metrics"] == ["mIoU", "FWIoU", "gAcc", "mAcc", "BIoU", "BF1"]
    assert infos["seg_voc"]["slots"]["seg"]["spatial"] is True
    assert set(infos["inst_coco"]["slots"]) == {"cls", "reg", "mask"}
    assert infos["inst_coco"]["slots"]["mask"]["adapter"] == "sigmoid_binary"
    assert infos["inst_coco"]["metrics"] == ["mask_AP", "mask_AP50", "mask_AP75", "box_AP"]
    assert (
        infos["pose_coco"]["slots"]["hm"]["adapter"] == "heatmap" and infos["pose_coco"]["metrics"][0] == "AP"
    )


@pytest.mark.slow
def test_export_python_and_latex(tmp_path):
    best = tmp_path / "best.json"
    best.write_text(
        json.dumps(
            {
                "format": "gp-loss/1",
                "task": "cls_digits",
                "metric": "accuracy",
                "fitness": None,
                "slots": {"cls": {"tree": "neg(mul(y, log(y_hat)))", "adapter": "softmax_onehot"}},
            }
        )
    )
    done = call_cli("export", str(best), "--format", "latex")
    assert done.returncode == 0 and r"\log" in done.stdout
    done = call_cli("export", str(best), "--format", "python", "-o", str(tmp_path / "loss.py"))
    assert done.returncode == 0 and "class Loss(" in (tmp_path / "loss.py").read_text()
    done = call_cli("export", str(best), "--format", "torchscript", "-o", str(tmp_path / "loss.pt"))
    assert done.returncode == 0 and (tmp_path / "loss.pt").stat().st_size > 0


BAD_FILES = {
    "missing": None,
    "malformed": "{oops",
    "version": '{"format": "gp-loss/7", "slots": {"cls": {"tree": "y", "adapter": "softmax_onehot"}}}',
    "unknown_primitive": '{"format": "gp-loss/1", "slots": {"cls": {"tree": "div(y, y_hat)", "adapter": "softmax_onehot"}}}',
    "arity": '{"format": "gp-loss/1", "slots": {"cls": {"tree": "add(y)", "adapter": "softmax_onehot"}}}',
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_export_input_is_one_line_exit_2(tmp_path, case):
    path = tmp_path / "best.json"
    if BAD_FILES[case] is not None:
        path.write_text(BAD_FILES[case])
    done = call_cli("export", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith("gp-loss: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [("no-such-command",), ("export", "x.json", "--format", "pdf"), ("export",), ("tasks", "--bogus")],
)
def test_usage_errors_are_one_line_exit_2(args):
    done = call_cli(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("gp-loss: ") and done.stderr.count("\n") == 1, done.stderr
