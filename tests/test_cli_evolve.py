"""evolve / show / report / export from the command line, as a user runs them."""

from __future__ import annotations

import json
import re

import pytest

from tests.test_cli import call_cli, run_cli

FAST = ["--task-option", "steps=60", "--population", "4", "--quiet"]


@pytest.mark.slow
def test_evolve_show_report_export_resume(tmp_path):
    run = tmp_path / "demo"
    done = run_cli("evolve", "--task", "cls_digits", "--max-explored", "150", "--out", str(run), *FAST)
    assert done.returncode == 0, done.stderr
    assert "best accuracy" in done.stdout and "L = mean[" in done.stdout
    for name in ("run.json", "events.jsonl", "checkpoint.json", "best.json"):
        assert (run / name).exists(), name
    shown = call_cli("show", str(run))
    assert shown.returncode == 0 and "rank" in shown.stdout and "outcomes:" in shown.stdout
    reported = call_cli("report", str(run))
    assert reported.returncode == 0
    for name in ("report.md", "best_fitness.png", "outcomes.png", "stage_time.png"):
        assert (run / name).stat().st_size > 0, name
    exported = call_cli("export", str(run / "best.json"), "--format", "latex")
    assert exported.returncode == 0 and "L_" in exported.stdout
    again = call_cli("evolve", "--resume", "--out", str(run), "--max-explored", "200", "--quiet")
    assert again.returncode == 0, again.stderr
    assert len((run / "events.jsonl").read_text().splitlines()) == 200


@pytest.mark.slow
def test_progress_is_shown(tmp_path):
    done = run_cli(
        "evolve",
        "--task",
        "cls_digits",
        "--budget",
        "8s",
        "--out",
        str(tmp_path / "r"),
        "--task-option",
        "steps=60",
    )
    assert done.returncode == 0, done.stderr
    assert (
        "explored" in done.stderr
        and "best accuracy" in done.stderr
        and "stopped: time budget spent" in done.stderr
    )
    assert json.loads((tmp_path / "r" / "run.json").read_text())["limits"]["budget"] == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evolve", "--task", "nope"], "unknown task 'nope'; known: cls_digits"),
        (["evolve", "--task", "cls_digits", "--budget", "soon"], "cannot read budget"),
        (["evolve"], "--task is required"),
        (["evolve", "--resume"], "--resume needs --out"),
        (["evolve", "--task", "cls_digits", "--metric", "mIoU", "--max-explored", "1"], "no metric 'mIoU'"),
        (["evolve", "--task", "cls_digits", "--task-option", "bogus=1", "--max-explored", "1"], "bad option"),
        (["show", "/nonexistent/run"], "holds no run"),
        (["evolve", "--task", "cls_digits", "--task-option", "steps=abc"], "must be int"),
        (["evolve", "--task", "cls_digits", "--task-option", "steps=0"], "at least 1"),
        (["evolve", "--task", "cls_digits", "--crossover", "1.5"], "probability"),
        (["evolve", "--task", "cls_digits", "--population", "1"], "at least 2"),
        (["evolve", "--task", "cls_digits", "--workers", "0"], "at least 1"),
        (
            ["evolve", "--task", "cls_digits", "--backend", "serial", "--workers", "2"],
            "one evaluation at a time",
        ),
        (["export", "/nonexistent.json", "--format", "latex"], "no such file"),
        (["evolve", "--task", "cls_digits", "--data-root", "/x"], "bad option for task 'cls_digits'"),
        (
            ["train", "--task", "cls_digits", "--loss", "ce", "--model", "resnet"],
            "bad option for task 'cls_digits'",
        ),
        (["evolve", "--task", "det_coco", "--data-root", "/nonexistent"], "is not a folder"),
        (["report", "/nonexistent/run"], "holds no run"),
        (["evolve", "--task", "cls_digits", "--lrp", "strict"], "'strict' is not one of 'shared', 'paper'"),
        (["bench", "lrp", "--task", "cls_digits", "--against-training", "0"], "must be at least 1"),
        (["bench", "trained-share", "/nonexistent/run"], "holds no run"),
    ],
)
def test_bad_evolve_input_is_one_line(tmp_path, args, message):
    fresh_out = args[0] == "evolve" and "--resume" not in args
    done = call_cli(*args, "--out", str(tmp_path / "x")) if fresh_out else call_cli(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("gp-loss: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "x").exists()  # bad input writes no run directory


@pytest.mark.parametrize(
    "args",
    [
        ["evolve", "--task", "cls_digits", "--budget", "soon"],
        ["evolve", "--task", "cls_digits", "--task-option", "steps=0"],
        ["show", "/nonexistent/run"],
    ],
)
def test_one_line_errors_match_in_a_process_of_their_own(args):
    """The in-process runner above says what ``python cli.py`` says, exit code included (for
    errors that do not list the registered tasks: a test module may have registered more)."""
    alone, inside = run_cli(*args), call_cli(*args)
    assert (alone.returncode, alone.stdout, alone.stderr) == (inside.returncode, inside.stdout, inside.stderr)
    assert "Traceback" not in alone.stderr


def test_resume_of_missing_run(tmp_path):
    done = call_cli("evolve", "--resume", "--out", str(tmp_path / "none"))
    assert done.returncode == 2 and "holds no run" in done.stderr


@pytest.mark.slow
def test_train_with_baseline_and_found_loss(tmp_path):
    done = run_cli(
        "train", "--task", "cls_digits", "--loss", "ce", "--seeds", "2", "--task-option", "final_steps=30"
    )
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"\| accuracy \| 0\.[0-9]{4} \+- 0\.[0-9]{4} \| 0\.[0-9]{4}, 0\.[0-9]{4} \|", done.stdout
    )
    assert "cls_digits training seed 1: step 30/30" in done.stderr  # progress on stderr
    as_json = call_cli(
        "train",
        "--task",
        "cls_digits",
        "--loss",
        "ce",
        "--seeds",
        "2",
        "--task-option",
        "final_steps=30",
        "--json",
    )
    data = json.loads(as_json.stdout)
    values = [run["metrics"]["accuracy"] for run in data["seeds"]]
    assert data["summary"]["accuracy"]["mean"] == pytest.approx(sum(values) / 2)
    assert f"{values[1]:.4f}" in done.stdout  # seeded: the same numbers as the Markdown run
    best = tmp_path / "best.json"
    best.write_text(
        json.dumps(
            {
                "format": "gp-loss/1",
                "slots": {"cls": {"tree": "square(add(y_hat, neg(y)))", "adapter": "softmax_onehot"}},
            }
        )
    )
    done = call_cli("train", "--task", "cls_digits", "--loss", str(best), "--task-option", "final_steps=30")
    assert done.returncode == 0 and "| accuracy |" in done.stdout
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps(
            {"format": "gp-loss/1", "slots": {"reg": {"tree": "neg(inter)", "adapter": "box_iou_areas"}}}
        )
    )
    done = call_cli("train", "--task", "cls_digits", "--loss", str(wrong))
    assert done.returncode == 2 and "needs ['cls']" in done.stderr
    done = call_cli("train", "--task", "cls_digits", "--loss", "lovasz")
    assert done.returncode == 2 and "known: cross_entropy" in done.stderr


@pytest.mark.slow
def test_trained_share_of_runs_with_each_lrp_protocol(tmp_path):
    for protocol in ("shared", "paper"):
        done = call_cli(
            "evolve", "--task", "cls_digits", "--max-trained", "3", "--population", "2", "--quiet",
            "--lrp", protocol, "--task-option", "steps=25", "--out", str(tmp_path / protocol),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        run = json.loads((tmp_path / protocol / "run.json").read_text())
        assert run["pipeline"]["lrp_protocol"] == protocol
    done = call_cli("bench", "trained-share", str(tmp_path / "shared"), str(tmp_path / "paper"))
    assert done.returncode == 0, done.stderr
    rows = re.findall(
        r"\| (shared|paper) \| cls_digits \| (\w+) \| [0-9.]+ \| 3 \| [0-9]+% \(\d/3\) \| 0\.\d{4} \|",
        done.stdout,
    )
    assert rows == [("shared", "shared"), ("paper", "paper")]
