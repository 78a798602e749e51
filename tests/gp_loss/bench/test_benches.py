"""The benchmarks run and print complete tables (their numbers live in docs/BENCHMARKS.md)."""

from __future__ import annotations

import re

import pytest

from gp_loss.bench import compile as bench_compile
from gp_loss.bench import efficiency, lrp, screen
from gp_loss.errors import GpLossError
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


def test_screen_reports_both_signatures():
    text = screen.run(n=15)
    assert re.search(r"\| cls_digits \| \(8, 10, 1, 1\) \| [0-9.]+ \|", text)
    assert re.search(r"\| seg_shaped_probe \| \(8, 21, 64, 64\) \| [0-9.]+ \|", text)


@pytest.mark.slow
def test_efficiency_runs_all_variants(tmp_path):
    text = efficiency.run("cls_digits", budget=6.0, slice_seconds=3.0, population=4, out=tmp_path)
    for name in efficiency.VARIANTS:
        assert f"| {name} |" in text
    assert "| naive evolution |" in text and " 1.0x |" in text


@pytest.mark.slow
def test_parallel_reports_one_and_two_workers():
    from gp_loss.bench import parallel

    text = parallel.run("cls_digits", budget=6.0, slice_seconds=3.0, task_options={"steps": 60})
    for row in ("serial, 1 worker", "process, 1 worker", "process, 2 workers"):
        assert f"| {row} |" in text


def test_results_table_rows_and_seeds():
    from gp_loss.bench import table

    rows = table.parse_rows(("ce", "tree MSE=mse"))
    assert rows == [("ce", "ce"), ("tree MSE", "mse")]
    text = table.run("cls_digits", rows, seeds=2, jobs=2, options={"steps": 30})
    assert re.search(r"\| ce \| [0-9.]+ \+- [0-9.]+ \| [0-9]+ \|", text)
    assert re.search(r"\| tree MSE \| [0-9.]+ \+- [0-9.]+ \| [0-9]+ \|", text)
    with pytest.raises(GpLossError, match="unknown loss"):
        table.run("cls_digits", [("x", "hinge")], seeds=1)
    with pytest.raises(GpLossError, match="bad --loss"):
        table.parse_rows(("=ce",))
