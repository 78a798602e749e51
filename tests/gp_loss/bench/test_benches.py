"""The benchmarks run and print complete tables (their numbers live in docs/BENCHMARKS.md)."""

from __future__ import annotations

import re

import pytest

from gp_loss.bench import compile as bench_compile
from gp_loss.bench import efficiency, lrp, screen
from gp_loss.core.errors import GpLossError
from tasks import get_task


def test_compile_table():
    text = bench_compile.run(shape=(2, 3, 8, 8), rounds=1, repeats=1)
    for row in ("hand-written torch", "gp-loss codegen", "deap.gp.compile"):
        assert re.search(rf"\| {re.escape(row)} \| [0-9.]+ \| [0-9.]+x \|", text), row


def test_lrp_calibration_holds_for_cls_digits():
    text = lrp.run(get_task("cls_digits"), n_random=5)
    assert "every known-good passes and every known-bad is rejected: yes" in text
    # CE, soft-IoU and MSE (the task's baselines), Dice and focal (the recall set), once each
    assert text.count("| good |") == 5 and text.count("| random |") == 5


def test_paper_protocol_lets_collapsing_losses_through():
    text = lrp.run(get_task("cls_digits"), n_random=0, protocol="paper")
    assert "every known-good passes and every known-bad is rejected: NO" in text
    assert "`tanh(add(y_hat, y))` -> pass" in text and "`sqrt(add(y_hat, y))` -> pass" in text


def test_screen_measures_the_real_tasks_probes():
    text = screen.run(n=15)
    # cls_digits: 8 probe digits, 10 classes; seg_voc: 8 built-in scenes, 11 classes, 64 x 64
    assert re.search(r"\| cls_digits \| \(8, 10\) \| [0-9.]+ \|", text)
    assert re.search(r"\| seg_voc \| \(8, 11, 64, 64\) \| [0-9.]+ \|", text)


@pytest.mark.slow
def test_efficiency_runs_all_variants(tmp_path):
    text = efficiency.run("cls_digits", budget=3.0, slice_seconds=1.5, population=4, out=tmp_path)
    from gp_loss.bench.markdown import markdown_json

    (table,) = markdown_json(text)["tables"]
    rows = {row["variant"]: row for row in table["rows"]}
    assert list(rows) == list(efficiency.VARIANTS)
    naive, full = rows["naive evolution"], rows["+ rungs (the full pipeline)"]
    for row in rows.values():  # the speed-up column is each rate over the naive one
        assert row["speed-up vs naive"] == pytest.approx(
            row["explored/s"] / naive["explored/s"], rel=0.02, abs=0.1
        )
    # naive evolution trains every loss that is neither a duplicate nor statically invalid (no
    # LRP, no GEC); screening explores many more losses in the same time
    counts = {k: int(v) for k, v in (item.rsplit(" ", 1) for item in naive["outcomes"].split(", "))}
    assert "rejected" not in counts and "equivalent" not in counts
    trained = naive["explored"] - counts.get("duplicate", 0) - counts.get("invalid", 0)
    assert naive["proxy trainings"] == trained and full["explored"] > 2 * naive["explored"]


@pytest.mark.slow
def test_parallel_reports_one_and_two_workers():
    from gp_loss.bench import parallel

    text = parallel.run("cls_digits", budget=3.0, slice_seconds=1.5, task_options={"steps": 60})
    for row in ("serial, 1 worker", "process, 1 worker", "process, 2 workers"):
        assert f"| {row} |" in text


@pytest.mark.slow
def test_results_table_rows_seeds_and_diverged_rows(tmp_path):
    from gp_loss.bench import table
    from gp_loss.bench.markdown import markdown_json
    from gp_loss.trees.best_json import BestLoss, SlotLoss, write_best

    exploding = tmp_path / "exploding.json"  # -1/p^2 falls past the loss bound within a few steps
    write_best(
        exploding,
        BestLoss(
            "cls_digits", "accuracy", None, {"cls": SlotLoss("neg(inv(mul(y_hat, y_hat)))", "softmax_onehot")}
        ),
    )
    rows = table.parse_rows(("ce", "tree MSE=mse", f"bad={exploding}"))
    assert rows[:2] == [("ce", "ce"), ("tree MSE", "mse")]
    result = table.run("cls_digits", rows, seeds=2, jobs=2, options={"steps": 30})
    data = result.to_json()
    ce, mse, bad = data["rows"]
    assert [r["seed"] for r in ce["runs"]] == [0, 1] and mse["summary"]["accuracy"]["trained"] == 2
    accuracies = [r["metrics"]["accuracy"] for r in ce["runs"]]
    assert ce["summary"]["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 2)
    assert ce["summary"]["accuracy"]["trained"] == 2 and 0.3 < accuracies[0] <= 1
    # a diverged training has no score: marked, left out of the mean, never a 0.0
    assert all(r["metrics"] is None and r["diverged"].startswith("diverged at step") for r in bad["runs"])
    assert bad["summary"]["accuracy"] == {"mean": None, "std": 0.0, "trained": 0}
    text = result.markdown()
    assert re.search(r"\| ce \| [0-9.]+ \+- [0-9.]+ \| [0-9]+ \|", text)
    assert "| bad | diverged |" in text
    assert markdown_json(text)["tables"][0]["rows"][0]["accuracy"]["mean"] == pytest.approx(
        100 * ce["summary"]["accuracy"]["mean"], abs=0.05
    )
    with pytest.raises(GpLossError, match="unknown loss"):
        table.run("cls_digits", [("x", "hinge")], seeds=1)
    with pytest.raises(GpLossError, match="bad --loss"):
        table.parse_rows(("=ce",))
