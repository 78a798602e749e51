"""A new adapter and a new task, defined here and nowhere else, searched and exported end to end.

This file is the extension contract's test: it registers ``scaled_residual`` (an adapter with
an option) and ``toy_regression`` (a task that trains with the shared training loop), then runs
``evolve``, ``show --json``, ``train --json`` and ``export --format python`` through the command
line with ``--import tests.test_extension_points``, the way a researcher adds their own problem.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import pytest
import torch

from gp_loss.adapters import ADAPTERS, Adapter, register_adapter
from tasks.base import LossFn, ProbeBatch, Slot, Task, TrainResult, option
from tasks.registry import TASKS, register_task
from tasks.training import train_model

ROOT = Path(__file__).resolve().parents[1]
Tensor = torch.Tensor


def scaled_residual(prediction: Tensor, target: Tensor, scale: float) -> Tuple[List[Tensor], Tensor]:  # noqa: UP006
    """``r`` = (prediction - target) / scale and ``t`` = target / scale, both (N, 1, 1, 1)."""
    shape = [prediction.shape[0], 1, 1, 1]
    residual = ((prediction.reshape(-1) - target.reshape(-1)) / scale).reshape(shape)
    valid = torch.ones(shape, dtype=torch.bool, device=prediction.device)
    return [residual, (target.reshape(-1) / scale).reshape(shape)], valid


@register_adapter
class ScaledResidual(Adapter):
    """Scalar regression: the residual and the target, in units of ``scale``."""

    name = "scaled_residual"
    inputs = ("r", "t")
    required_inputs = (frozenset({"r"}),)
    ranges: ClassVar[dict] = {"r": (-math.inf, math.inf), "t": (-math.inf, math.inf)}
    symbols: ClassVar[dict] = {"r": ("r", {"real": True}), "t": ("t", {"real": True})}
    arguments = ("prediction", "target")
    defaults: ClassVar[dict] = {"scale": 1.0}
    function = staticmethod(scaled_residual)


@register_task("toy_regression")
class ToyRegression(Task):
    """y = x . w + noise, a linear model, metric R^2 on a validation split."""

    slots = (
        Slot(
            "fit",
            "scaled_residual",
            spatial=False,
            probe_metric="-|residual|",
            adapter_options={"scale": 2.0},
        ),
    )
    metrics = ("r2",)
    baselines: ClassVar[dict] = {"mse": {"fit": "square(r)"}, "l1": {"fit": "abs(r)"}}
    default_budget = "20s"
    default_population = 4
    lrp_defaults: ClassVar[dict] = {"shared": {"steps": 30, "lr": 0.1, "eta": 0.2}}

    def __init__(
        self, metric: str | None = None, seed: int = 0, device: str = "cpu", steps: int = 60
    ) -> None:
        super().__init__(metric, seed, device)
        self.steps = option("steps", steps, int, 1)
        generator = torch.Generator().manual_seed(1234)
        self.x = torch.randn(240, 4, generator=generator)
        self.y = self.x @ torch.tensor([1.5, -2.0, 0.5, 1.0]) + 0.1 * torch.randn(240, generator=generator)

    def probe_batches(self) -> Mapping[str, ProbeBatch]:
        generator = torch.Generator().manual_seed(self.seed)
        return {"fit": ProbeBatch(torch.randn(8, generator=generator), self.y[:8])}

    def probe_metric(self, slot: str, predictions: Tensor, targets: Tensor) -> Tensor:
        return -(predictions - targets).abs()

    def _train(self, losses: Mapping[str, LossFn], seed: int, stop_invalid: bool = True):
        x, y = self.x[:160], self.y[:160]

        def step_losses(model, step: int, generator: torch.Generator) -> dict[str, Tensor]:
            batch = torch.randint(0, len(x), (32,), generator=generator)
            return {"fit": losses["fit"](model(x[batch]).squeeze(1), y[batch])}

        return train_model(
            lambda: torch.nn.Linear(4, 1),
            step_losses,
            steps=self.steps,
            seed=seed,
            optimizer=lambda params: torch.optim.Adam(params, lr=0.05),
            stop_invalid=stop_invalid,
        )

    def _r2(self, model, x: Tensor, y: Tensor) -> float:
        with torch.no_grad():
            residual = model(x).squeeze(1) - y
        return float(1 - residual.pow(2).mean() / y.var())

    def proxy_train(self, losses: Mapping[str, LossFn], *, stop_invalid: bool = True) -> TrainResult:
        run = self._train(losses, self.seed, stop_invalid)
        if run.diverged:
            return TrainResult("diverged", {}, run.steps, run.last_loss)
        return TrainResult(
            "trained", {"r2": self._r2(run.model, self.x[160:200], self.y[160:200])}, run.steps
        )

    def final_evaluate(self, losses: Mapping[str, LossFn], seed: int = 0) -> dict[str, float]:
        run = self._train(losses, seed)
        run.raise_if_diverged(seed)
        return {"r2": self._r2(run.model, self.x[200:], self.y[200:])}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "cli.py"), *args, "--import", "tests.test_extension_points"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_registered_here_and_nowhere_else():
    assert ADAPTERS["scaled_residual"] is ScaledResidual and TASKS["toy_regression"] is ToyRegression
    assert "scaled_residual" not in (ROOT / "gp_loss").joinpath("adapters", "__init__.py").read_text()


@pytest.mark.slow
def test_evolve_show_train_and_export_a_new_task_with_a_new_adapter(tmp_path):
    run = tmp_path / "run"
    done = run_cli("evolve", "--task", "toy_regression", "--max-explored", "25", "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stderr
    best = json.loads((run / "best.json").read_text())
    (slot,) = best["slots"].values()
    # the slot's adapter option travels with the loss
    assert slot["adapter"] == "scaled_residual" and slot["adapter_options"] == {"scale": 2.0}
    assert best["fitness"] > 0.5  # a found loss fits the line

    shown = run_cli("show", str(run), "--json")
    assert shown.returncode == 0, shown.stderr
    leader = json.loads(shown.stdout)["leaderboard"][0]
    assert leader["fitness"] == pytest.approx(best["fitness"]) and "r" in leader["formulas"]["fit"]

    trained = run_cli("train", "--task", "toy_regression", "--loss", str(run), "--seeds", "2", "--json")
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["summary"]["r2"]["trained"] == 2

    module_path = tmp_path / "found_loss.py"
    exported = run_cli("export", str(run), "--format", "python", "-o", str(module_path))
    assert exported.returncode == 0, exported.stderr
    spec = importlib.util.spec_from_file_location("found_loss", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loss = module.Loss()  # a one-slot file's one class, whatever the slot's name
    assert loss.scale == 2.0  # the option is the exported module's default

    # the exported module computes what the search computed: the tree on the adapter's inputs
    from gp_loss.trees.loss_module import TreeLoss

    prediction, target = torch.randn(16), torch.randn(16)
    reference = TreeLoss.for_slot(ToyRegression.slots[0], slot["tree"])
    assert torch.allclose(loss(prediction, target), reference(prediction, target))
    # and the tree is a function of the scaled residual: independent check for the MSE tree
    mse = TreeLoss.for_slot(ToyRegression.slots[0], "square(r)")
    assert torch.allclose(mse(prediction, target), ((prediction - target) / 2.0).pow(2).mean())


def test_unknown_adapter_and_bad_option_are_one_line_errors():
    from gp_loss.core.errors import GpLossError

    with pytest.raises(GpLossError, match=r"unknown adapter 'scaled_residuals'; known: .*scaled_residual"):
        Slot("fit", "scaled_residuals", spatial=False, probe_metric="x")
    with pytest.raises(GpLossError, match="option scale='big' must be float"):
        Slot("fit", "scaled_residual", spatial=False, probe_metric="x", adapter_options={"scale": "big"})


def test_a_task_states_its_name_once_in_the_decorator():
    assert ToyRegression.name == "toy_regression"  # the class body does not repeat it
    assert TASKS["toy_regression"]().name == "toy_regression"  # run.json records it

    class Mislabelled(ToyRegression):
        name = "other"

    with pytest.raises(ValueError, match="says name = 'other' but registers as 'mislabelled'"):
        register_task("mislabelled")(Mislabelled)
    assert "mislabelled" not in TASKS
