"""The public Python API: search, resume, retrain and compare, the generic task, the examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gp_loss
from gp_loss.core.errors import GpLossError
from gp_loss.engine.evolution import Hook
from tasks.generic import GenericTask

ROOT = Path(__file__).resolve().parents[1]


def tiny_mlp() -> torch.nn.Module:
    """Module level, so that process workers can unpickle the task that holds it."""
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def blobs(seed: int, n: int = 90) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian blobs in 4-D: a classification problem an MLP solves in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    return centres[labels] + 0.7 * torch.randn(n, 4, generator=generator), labels


def blob_task(**kw) -> GenericTask:
    return GenericTask(
        tiny_mlp, blobs(0), blobs(1), test_data=blobs(2), steps=40, lr=1e-2, name="blobs", **kw
    )


def test_search_resume_and_load_loss_by_task_name(tmp_path):
    result = gp_loss.search(
        "cls_digits", max_trained=2, out=tmp_path / "run", progress=False, task_options={"steps": 40}
    )
    assert result.state.trained == 2 and not result.interrupted
    assert result.best is not None and result.fitness == pytest.approx(result.leaderboard(1)[0]["fitness"])
    module = result.load_loss()
    logits, labels = torch.randn(5, 10), torch.randint(0, 10, (5,))
    assert torch.isfinite(module(logits, labels))
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["slots"]["cls"]["tree"] == result.best["cls"]
    more = gp_loss.resume(tmp_path / "run", max_trained=4, progress=False)
    assert more.state.trained == 4 and more.state.explored > result.state.explored
    assert more.fitness >= result.fitness
    with pytest.raises(GpLossError, match="unknown search setting 'populaton'"):
        gp_loss.search("cls_digits", max_explored=1, populaton=4, out=tmp_path / "x", progress=False)


class StopAfter(Hook):
    """Presses Ctrl-C after ``n`` explored losses."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_event(self, event, state) -> None:
        if state.explored == self.n:
            raise KeyboardInterrupt


def test_ctrl_c_stops_cleanly_and_the_run_resumes(tmp_path, capsys):
    from gp_loss.api import run, settings_from_keywords
    from gp_loss.engine.evolution import Limits
    from gp_loss.run.runner import start

    task = blob_task()
    settings = settings_from_keywords(task, Limits(max_explored=50), {"population": 4})
    result = run(start(settings, tmp_path / "run", hooks=[StopAfter(20)], progress=False, task=task))
    assert result.interrupted and result.state.explored == 20
    assert "gp_loss.resume(" in capsys.readouterr().err
    with pytest.raises(GpLossError, match="pass it again"):
        gp_loss.resume(tmp_path / "run", progress=False)  # a task object is not rebuilt by name
    more = gp_loss.resume(tmp_path / "run", progress=False, task=task)
    assert more.state.explored == 50 and not more.interrupted
    ids = [json.loads(line)["id"] for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert ids == list(range(50))  # nothing lost, nothing repeated


@pytest.mark.slow
def test_generic_task_with_process_workers_matches_serial(tmp_path):
    task = blob_task()
    serial = gp_loss.search(
        task, max_trained=6, out=tmp_path / "serial", progress=False, population=4, seed=3
    )
    parallel = gp_loss.search(
        task,
        max_trained=6,
        out=tmp_path / "process",
        progress=False,
        population=4,
        seed=3,
        backend="process",
        workers=2,
    )
    assert serial.state.trained > 0 and parallel.state.trained > 0
    # the same losses trained to the same fitness in the workers (seeded trainings)
    fitness = {json.dumps(row["trees"]): row["fitness"] for row in serial.leaderboard(50)}
    shared = [row for row in parallel.leaderboard(50) if json.dumps(row["trees"]) in fitness]
    assert shared and all(
        row["fitness"] == pytest.approx(fitness[json.dumps(row["trees"])]) for row in shared
    )
    comparison = gp_loss.compare(task, {"found": parallel, "ce": "cross_entropy"}, seeds=2)
    data = comparison.to_json()
    assert data["losses"]["ce"]["summary"]["trained"] == 2
    found = [r["metrics"]["accuracy"] for r in data["losses"]["found"]["runs"]]
    ce = [r["metrics"]["accuracy"] for r in data["losses"]["ce"]["runs"]]
    assert data["losses"]["ce"]["paired_difference_to_found"]["mean"] == pytest.approx(
        sum(f - c for f, c in zip(found, ce)) / 2
    )


def test_generic_task_defaults_and_errors():
    task = blob_task()
    assert task.metrics == ("accuracy",) and task.default_baseline == "cross_entropy"
    assert set(task.baselines) >= {"cross_entropy", "focal", "mse"}
    (batch,) = task.probe_batches().values()
    assert batch.predictions.shape == (8, 3) and batch.targets.shape == (8,)
    report = gp_loss.retrain(task, "cross_entropy", seeds=1)
    assert report.runs[0].metrics["accuracy"] > 0.8  # blobs are easy
    with pytest.raises(GpLossError, match="has no default metrics"):
        GenericTask(tiny_mlp, blobs(0), blobs(1), adapter="box_iou_areas")
    with pytest.raises(GpLossError, match="unknown optimizer 'adagrad'"):
        blob_task(optimizer="adagrad")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "rows"),
    [
        ("breast_cancer_classifier.py", ("| found |", "| cross-entropy |")),
        ("diabetes_regression.py", ("| found |", "| MSE |")),
    ],
)
def test_examples_run_at_tiny_budgets(tmp_path, script, rows):
    command = [
        sys.executable,
        str(ROOT / "examples" / script),
        "--budget",
        "8s",
        "--seeds",
        "2",
        "--steps",
        "40",
    ]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert all(row in done.stdout for row in rows) or "no loss trained" in done.stdout
    assert (tmp_path / "run" / "run.json").exists()


def wide_mlp() -> torch.nn.Module:
    """Expects 6 features where the blobs have 4."""
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def two_class_mlp() -> torch.nn.Module:
    """Two logits for three classes."""
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


@pytest.mark.parametrize(
    ("model", "says"),
    [
        (wide_mlp, r"slot 'loss': the model does not take the data's inputs \(shape \(8, 4\), float32\)"),
        (
            two_class_mlp,
            r"slot 'loss': adapter 'softmax_onehot' cannot read .*predictions \(8, 2\).*targets \(8,\)",
        ),
    ],
)
def test_a_model_that_does_not_fit_its_data_fails_before_the_run_directory_is_written(tmp_path, model, says):
    task = GenericTask(model, blobs(0), blobs(1), steps=40, name="misfit")
    with pytest.raises(GpLossError, match=says):
        gp_loss.search(task, max_trained=1, out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    # the same out= is then free: a fitting model searches there
    done = gp_loss.search(blob_task(), max_trained=1, out=tmp_path / "run", progress=False, cache="off")
    assert done.state.trained == 1


def test_the_public_names_stay_functions_whatever_sub_packages_are_imported():
    import importlib
    import pkgutil

    import gp_loss

    for found in pkgutil.iter_modules(gp_loss.__path__):
        importlib.import_module(f"gp_loss.{found.name}")
    for name in ("search", "resume", "retrain", "compare", "load_loss", "make_toolbox", "finalize", "verify"):
        assert callable(getattr(gp_loss, name)), name
    assert gp_loss.search.__module__ == "gp_loss.api"
