"""The one training loop every task's proxy and final trainings run (docs/architecture.md section 3, stage 5).

It owns what the paper calls *stopping training for invalid loss values* (a non-finite or
exploding loss, a non-finite gradient norm: one rule, one bound), the seeding of the model and of
the batch order, step accounting, and progress on stderr. Tasks provide the model, the loss of
one step and the evaluation.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch
from torch import nn

from gp_loss.core.errors import GpLossError
from gp_loss.core.events import DIVERGED, TRAINED

#: A loss whose magnitude passes this bound counts as exploding: with the safe primitives a
#: tree only gets there on its way to a saturation rail (1/EPS, exp's cap), where gradients
#: stop meaning anything. One bound for every task.
LOSS_BOUND = 1e6

#: The final protocol's version: part of every retraining log's key (a changed protocol never
#: reuses an old result). ``annealed``: the learning rate follows a cosine to 0 over the run and
#: the model evaluated is the exponential moving average of its weights over about the last
#: tenth of the run (docs/RESULTS.md measures what each lever does to the seed noise).
FINAL_PROTOCOL = "final/2"
#: The final protocols a task's ``final_protocol`` option names: ``plain`` is the proxy's recipe
#: at ``final_steps`` (the protocol before final/2).
#: ``ema``: the moving average at the proxy's (constant) learning rate.
FINAL_PROTOCOLS = {"annealed": {"cosine": True, "ema": True}, "ema": {"ema": True}, "plain": {}}

#: ``step_losses(model, step, generator) -> {part: scalar loss}``; the parts are summed.
StepLosses = Callable[[nn.Module, int, torch.Generator], Mapping[str, torch.Tensor]]


@dataclass
class TrainResult:
    """Outcome of one proxy training.

    Attributes:
        outcome: ``trained`` or ``diverged`` (stopped at a non-finite or exploding loss).
        metrics: evaluation metrics on the proxy validation split (empty if diverged).
        steps: optimisation steps done.
        final_loss: last loss values per slot.
    """

    outcome: str
    metrics: dict[str, float]
    steps: int
    final_loss: dict[str, float] = field(default_factory=dict)


class TrainingDiverged(GpLossError):
    """A final training stopped at an invalid loss value: it has no score.

    Attributes:
        steps: steps completed before the invalid value.
        reason: what was invalid (``non-finite loss``, ``exploding loss``, ``non-finite gradient``).
    """

    def __init__(self, steps: int, reason: str, seed: int | None = None) -> None:
        self.steps, self.reason, self.seed = steps, reason, seed
        where = "" if seed is None else f" (seed {seed})"
        super().__init__(f"training diverged at step {steps}{where}: {reason}")


@dataclass
class Trained:
    """What one run of :func:`train_model` leaves.

    Attributes:
        model: the trained model (as it was at the stop, if it diverged).
        steps: optimisation steps done.
        diverged: why training stopped early (``None``: it ran all its steps).
        last_loss: the last loss value of each part.
    """

    model: nn.Module
    steps: int
    diverged: str | None = None
    last_loss: dict[str, float] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """``trained`` or ``diverged``."""
        return TRAINED if self.diverged is None else DIVERGED

    def raise_if_diverged(self, seed: int | None = None) -> None:
        """Raise :class:`TrainingDiverged` for a diverged run (final trainings use it)."""
        if self.diverged is not None:
            raise TrainingDiverged(self.steps, self.diverged, seed)


def invalid_loss(value: float) -> str | None:
    """Why a step's loss value stops training, or ``None`` (the paper's stop-invalid rule)."""
    if not math.isfinite(value):
        return "non-finite loss"
    if abs(value) > LOSS_BOUND:
        return f"exploding loss (|{value:.3g}| > {LOSS_BOUND:g})"
    return None


class WeightAverage:
    """An exponential moving average of a model's parameters (buffers copied as they are), the
    model a final training evaluates: the decay warms up as (1 + t) / (10 + t) and settles at
    ``1 - 10 / steps``, an average over about the last tenth of the run."""

    def __init__(self, model: nn.Module, steps: int) -> None:
        import copy

        self.model = copy.deepcopy(model)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.decay = max(0.0, 1.0 - 10.0 / max(steps, 1))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model`` after optimisation step ``step`` (1-based)."""
        decay = min(self.decay, (1.0 + step) / (10.0 + step))
        for average, current in zip(self.model.parameters(), model.parameters()):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.model.buffers(), model.buffers()):
            average.copy_(current)


class Training:
    """One training run that can stop at any step and continue from there: the model, the
    optimiser, the learning-rate schedule and the batch generator keep their state between
    :meth:`advance` calls, so a run evaluated part-way (a multi-fidelity rung) and continued
    ends exactly where an uninterrupted run would.

    Args:
        build_model: a fresh model; called after ``torch.manual_seed(seed)``.
        step_losses: the loss parts of one step; draw the batch with the generator given
            (seeded with ``seed``), so the batch order is reproducible.
        steps: the run's full length (the cosine schedule's horizon; :meth:`advance` stops there).
        optimizer: builds the optimiser from the trainable parameters.
        cosine: cosine learning-rate decay over ``steps`` (a short run still ends with small steps).
        ema: evaluate an exponential moving average of the weights (:class:`WeightAverage`):
            :meth:`advance` returns it as the trained model.
        stop_invalid: the paper's stop-invalid rule (off for the ablation).
        label: what :func:`progress` shows for this run.
    """

    def __init__(
        self,
        build_model: Callable[[], nn.Module],
        step_losses: StepLosses,
        *,
        steps: int,
        seed: int,
        optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer],
        cosine: bool = False,
        ema: bool = False,
        stop_invalid: bool = True,
        label: str = "training",
    ) -> None:
        torch.manual_seed(seed)
        self.model = build_model()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = optimizer(self.params)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, steps) if cosine else None
        self.average = WeightAverage(self.model, steps) if ema else None
        self.generator = torch.Generator().manual_seed(seed)
        self.step_losses, self.steps, self.seed = step_losses, steps, seed
        self.stop_invalid, self.label = stop_invalid, label
        self.done = 0
        self.diverged: str | None = None
        self.last: dict[str, float] = {}

    def advance(self, to_step: int | None = None) -> Trained:
        """Train on to step ``to_step`` (default: the end); nothing more once diverged."""
        target = self.steps if to_step is None else min(to_step, self.steps)
        self.model.train()  # an evaluation in between may have switched it to eval mode
        with _REPORTER.run(self.label, self.seed, self.steps) as report:
            while self.done < target and self.diverged is None:
                self._one_step(report)
        model = self.model if self.average is None else self.average.model
        return Trained(model, self.done, self.diverged, dict(self.last))

    def _one_step(self, report: Callable[[int, float], None]) -> None:
        parts = self.step_losses(self.model, self.done, self.generator)
        total = functools.reduce(operator.add, parts.values())
        self.last = {k: float(v.detach()) for k, v in parts.items()}
        value = sum(self.last.values())
        if self.stop_invalid and (reason := invalid_loss(value)) is not None:
            self.diverged = reason
            return
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.stop_invalid and not _finite_gradients(self.params):
            self.diverged = "non-finite gradient"
            return
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
        self.done += 1
        if self.average is not None:
            self.average.update(self.model, self.done)
        report(self.done, value)


def train_model(build_model: Callable[[], nn.Module], step_losses: StepLosses, **settings: Any) -> Trained:
    """Train ``build_model()`` in one go: :class:`Training` with the same keywords (``steps``,
    ``seed``, ``optimizer``, ``cosine``, ``ema``, ``stop_invalid``, ``label``), advanced to its end."""
    return Training(build_model, step_losses, **settings).advance()


def rung_results(
    training: Training, steps: Sequence[int], evaluate: Callable[[nn.Module], dict[str, float]]
) -> Iterator[Any]:
    """Train to each of ``steps`` in turn and yield a :class:`tasks.base.TrainResult` with the
    metrics there; stops after a divergence. The caller stops training by not asking for more."""
    for rung in steps:
        run = training.advance(rung)
        if run.diverged:
            yield TrainResult(DIVERGED, {}, run.steps, run.last_loss)
            return
        yield TrainResult(TRAINED, evaluate(run.model), run.steps, run.last_loss)


def _finite_gradients(params: list[nn.Parameter]) -> bool:
    """The total gradient norm is finite (read only: nothing is clipped or rescaled)."""
    grads = [p.grad for p in params if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.stack([torch.linalg.vector_norm(g) for g in grads])).all())


class _Reporter:
    """Progress of trainings on a stream: off unless :func:`progress` switched it on."""

    def __init__(self) -> None:
        self.stream: TextIO | None = None
        self.interval = 10.0

    @contextlib.contextmanager
    def run(self, label: str, seed: int, steps: int) -> Iterator[Callable[[int, float], None]]:
        stream = self.stream
        if stream is None:
            yield lambda step, loss: None
            return
        tty = stream.isatty()
        start = last = time.monotonic()

        def report(step: int, loss: float) -> None:
            nonlocal last
            now = time.monotonic()
            if step < steps and now - last < (0.2 if tty else self.interval):
                return
            last = now
            eta = (now - start) / step * (steps - step)
            text = f"{label} seed {seed}: step {step}/{steps} loss {loss:.4g} ETA {_seconds(eta)}"
            if tty:
                done = int(20 * step / steps)
                stream.write(f"\r\033[K[{'#' * done}{'.' * (20 - done)}] {text}")
            else:
                stream.write(text + "\n")
            stream.flush()

        try:
            yield report
        finally:
            if tty:
                stream.write("\n")
                stream.flush()


_REPORTER = _Reporter()


@contextlib.contextmanager
def progress(stream: TextIO | None = None, interval: float = 10.0) -> Iterator[None]:
    """Show the progress of every training run inside the block on ``stream`` (stderr): a bar
    redrawn in place on a terminal, a plain line every ``interval`` seconds otherwise."""
    previous = (_REPORTER.stream, _REPORTER.interval)
    _REPORTER.stream, _REPORTER.interval = stream or sys.stderr, interval
    try:
        yield
    finally:
        _REPORTER.stream, _REPORTER.interval = previous


def note(text: str) -> None:
    """A line of progress (evaluation started...) where :func:`progress` is on."""
    if _REPORTER.stream is not None:
        _REPORTER.stream.write(text + "\n")
        _REPORTER.stream.flush()


def _seconds(seconds: float) -> str:
    minutes, secs = divmod(max(0, round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
