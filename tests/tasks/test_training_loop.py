"""The one training loop: stop-invalid (one bound), seeding, step accounting, progress."""

from __future__ import annotations

import io

import pytest
import torch

from tasks.training import LOSS_BOUND, TrainingDiverged, progress, train_model


def _run(loss_of_step, steps: int = 20, seed: int = 0, stop_invalid: bool = True):
    def step_losses(model, step, generator):
        x = torch.randn(4, 3, generator=generator)
        return {"main": loss_of_step(model(x), step)}

    return train_model(
        lambda: torch.nn.Linear(3, 1),
        step_losses,
        steps=steps,
        seed=seed,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        stop_invalid=stop_invalid,
        label="unit",
    )


def test_seeded_runs_are_identical_and_seeds_differ():
    a, b, c = (_run(lambda out, step: out.pow(2).mean(), seed=s) for s in (3, 3, 4))
    assert torch.equal(a.model.weight, b.model.weight) and not torch.equal(a.model.weight, c.model.weight)
    assert a.outcome == "trained" and a.steps == 20 and a.diverged is None


def test_stops_at_a_non_finite_loss_an_exploding_loss_and_a_non_finite_gradient():
    nan = _run(lambda out, step: out.mean() * (float("nan") if step == 7 else 1.0))
    assert (nan.outcome, nan.steps, nan.diverged) == ("diverged", 7, "non-finite loss")
    big = _run(lambda out, step: out.mean() * 0 + (2 * LOSS_BOUND if step == 3 else 1.0))
    assert big.steps == 3 and big.diverged.startswith("exploding loss")
    # a finite value whose gradient is infinite: sqrt at 0
    grad = _run(lambda out, step: (out * 0).abs().sqrt().mean() if step == 5 else out.mean())
    assert (grad.steps, grad.diverged) == (5, "non-finite gradient")
    kept = _run(lambda out, step: out.mean() * (float("nan") if step == 7 else 1.0), stop_invalid=False)
    assert kept.outcome == "trained" and kept.steps == 20
    with pytest.raises(TrainingDiverged, match="diverged at step 7 \\(seed 2\\): non-finite loss"):
        nan.raise_if_diverged(2)


def test_progress_lines_name_seed_step_loss_and_eta(capsys):
    stream = io.StringIO()  # not a terminal: plain lines
    with progress(stream, interval=0.0):
        _run(lambda out, step: out.pow(2).mean(), steps=5, seed=9)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("unit seed 9: step 5/5 loss ")
    assert all("ETA" in line for line in lines)
    _run(lambda out, step: out.pow(2).mean())  # outside progress() (proxy trainings): silent
    assert capsys.readouterr().err == ""
