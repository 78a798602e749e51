"""The yardstick benches on a tiny cls_digits configuration: ``bench noise`` measures what it says,
``bench paper`` writes the paper's table and resumes after a kill with nothing retrained twice."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from scipy.stats import t

from gp_loss.bench import noise, paper
from gp_loss.core.errors import GpLossError
from gp_loss.results.retraining import TrainingLog
from tasks.training import WeightAverage

TINY = {"steps": 30, "final_steps": 60}


@pytest.mark.slow
def test_noise_figures_are_the_seed_spread_and_the_paired_half_width(tmp_path):
    log = tmp_path / "noise.jsonl"
    result = noise.run("cls_digits", None, seeds=3, options=TINY, protocols=("plain", "annealed"), log=log)
    assert set(result.runs) == {"plain", "annealed"}
    assert [label for label, _ in result.losses] == ["cross_entropy", "mse"]  # default baseline first
    figures = result.protocol_figures("annealed")
    ce = [r.metrics["accuracy"] for r in result.runs["annealed"]["cross_entropy"]]
    mse = [r.metrics["accuracy"] for r in result.runs["annealed"]["mse"]]
    assert figures["losses"]["cross_entropy"]["std"] == pytest.approx(100 * statistics.stdev(ce))
    diffs = [100 * (b - a) for a, b in zip(ce, mse)]
    (pair,) = figures["pairs"]
    assert pair["std"] == pytest.approx(statistics.stdev(diffs))
    assert pair["half_width_5_seeds"] == pytest.approx(
        t.ppf(0.975, 4) * statistics.stdev(diffs) / math.sqrt(5)
    )
    assert pair["half_width"] == pytest.approx(t.ppf(0.975, 2) * statistics.stdev(diffs) / math.sqrt(3))
    assert "| mse - cross_entropy |" in result.markdown()
    assert len(log.read_text().splitlines()) == 2 * 2 * 3
    again = noise.run("cls_digits", None, seeds=3, options=TINY, protocols=("plain", "annealed"), log=log)
    assert len(log.read_text().splitlines()) == 12  # all reused from the log
    assert again.runs["annealed"]["mse"][2].metrics == result.runs["annealed"]["mse"][2].metrics


def test_noise_refuses_one_seed_and_unknown_protocols():
    with pytest.raises(GpLossError, match="at least 2"):
        noise.run("cls_digits", None, seeds=1, options=TINY)
    with pytest.raises(GpLossError, match="unknown final protocol 'swa'"):
        noise.run("cls_digits", None, seeds=2, options=TINY, protocols=("swa",))


def test_the_annealed_protocol_evaluates_the_weights_moving_average():
    import torch

    model = torch.nn.Linear(2, 1)
    average = WeightAverage(model, steps=100)
    assert average.decay == pytest.approx(0.9)
    before = average.model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(model, step=1000)  # past the warm-up: decay 0.9
    assert torch.allclose(average.model.weight, before + 0.1)


@pytest.mark.slow
def test_paper_table_then_a_killed_run_retrains_only_what_was_unfinished(tmp_path, capfd):
    out = tmp_path / "paper"
    first = paper.run(["cls_digits"], out, seeds=2, top=1, options=TINY, max_trained=2)
    (table,) = first.tables
    labels = [r.label for r in table.table.rows]
    assert labels[1:] == ["cross_entropy", "mse"]  # the default baseline first, every reference
    text = (out / "paper.md").read_text()
    assert "### cls_digits" in text and "found (" in text and "| cross_entropy |" in text
    data = json.loads((out / "paper.json").read_text())
    assert data["tasks"][0]["verdicts"][0]["baseline"] == "cross_entropy"
    log = out / "cls_digits" / "paper.jsonl"
    lines = log.read_text().splitlines()
    assert len(lines) == 3 * 2
    # a kill mid-way: two trainings recorded, the third torn mid-write
    log.write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])
    capfd.readouterr()
    second = paper.run(["cls_digits"], out, seeds=2, top=1, options=TINY, max_trained=2)
    assert "4 training(s) to run, 2 finished before" in capfd.readouterr().err
    after = log.read_text().splitlines()
    assert after[:2] == lines[:2] and len(after) == 6
    assert len(TrainingLog(log).done) == 6
    winner = second.tables[0].found()
    assert winner is not None and winner.label == table.found().label


@pytest.mark.slow
def test_paper_refuses_a_run_of_another_task(tmp_path):
    first = paper.run(["cls_digits"], tmp_path / "p", seeds=2, top=1, options=TINY, max_trained=1)
    with pytest.raises(GpLossError, match="unknown task 'det_cocoo'"):
        paper.run([], tmp_path / "q", runs={"det_cocoo": first.tables[0].run})
    with pytest.raises(GpLossError, match="that run searched 'cls_digits'"):
        paper.run([], tmp_path / "q", runs={"seg_voc": first.tables[0].run}, seeds=2)
