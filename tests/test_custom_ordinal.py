"""A new adapter and a small task in one file, written from docs/custom_tasks.md alone: an
ordinal, cumulative-logit adapter over integer labels and an MLP on synthetic ordered classes.
The default search must train candidates, and the task's own reference loss must pass the
Loss-Rejection Protocol (the softmax ordering check once rejected every candidate of any slot
with integer targets)."""

from __future__ import annotations

import math
from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch

import gp_loss
from gp_loss.adapters import ADAPTERS, Adapter, register_adapter
from gp_loss.fitness.pipeline import FitnessPipeline
from tasks.generic import GenericTask

Tensor = torch.Tensor
LEVELS = 4  # ordered classes 0..3; the model gives LEVELS - 1 cumulative logits


def cumulative_logits(logits: Tensor, labels: Tensor) -> Tuple[List[Tensor], Tensor]:  # noqa: UP006
    """``p_k`` = sigmoid(logit_k) = P(label > k) and ``t_k`` = [label > k], both (N, K-1, 1, 1)."""
    n, k = logits.shape[0], logits.shape[1]
    thresholds = torch.arange(k, device=logits.device).view(1, -1)
    above = (labels.view(-1, 1) > thresholds).to(logits.dtype)
    shape = [n, k, 1, 1]
    valid = torch.ones(shape, dtype=torch.bool, device=logits.device)
    return [torch.sigmoid(logits).reshape(shape), above.reshape(shape)], valid


if "ordinal_cumulative" not in ADAPTERS:

    @register_adapter
    class OrdinalCumulative(Adapter):
        """Ordinal regression with cumulative logits: P(label > k) against [label > k]."""

        name = "ordinal_cumulative"
        inputs = ("p", "t")
        required_inputs = (frozenset({"p"}), frozenset({"t"}))
        ranges: ClassVar[dict] = {"p": (0.0, 1.0), "t": (0.0, 1.0)}
        symbols: ClassVar[dict] = {"p": ("p", {"nonnegative": True}), "t": ("t", {"nonnegative": True})}
        arguments = ("logits", "labels")
        function = staticmethod(cumulative_logits)


def predicted_level(logits: Tensor) -> Tensor:
    return (torch.sigmoid(logits) > 0.5).sum(1)


def accuracy(logits: Tensor, labels: Tensor) -> float:
    return float((predicted_level(logits) == labels).float().mean())


def closeness(logits: Tensor, labels: Tensor) -> Tensor:
    """Per sample, higher is better: minus the distance in levels."""
    return -(predicted_level(logits) - labels).abs().float()


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, LEVELS - 1))


def ordered(seed: int, n: int = 240) -> tuple[Tensor, Tensor]:
    """A score x . w plus noise, cut into LEVELS ordered classes of about equal size."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    score = x @ torch.tensor([1.0, -0.5, 0.8, 0.3]) + 0.2 * torch.randn(n, generator=generator)
    cuts = torch.tensor([-0.8, 0.0, 0.8]) * math.sqrt(1.98)
    return x, torch.bucketize(score, cuts)


def ordinal_task() -> GenericTask:
    return GenericTask(
        mlp,
        ordered(0),
        ordered(1),
        test_data=ordered(2),
        adapter="ordinal_cumulative",
        metric=accuracy,
        metric_name="accuracy",
        sample_metric=closeness,
        baselines={"brier": {"loss": "square(add(p, neg(t)))"}},
        name="ordinal_mlp",
        steps=60,
        lr=1e-2,
    )


def test_the_reference_loss_passes_and_a_default_search_trains_candidates(tmp_path, capfd):
    task = ordinal_task()
    pipeline = FitnessPipeline(task)
    result = pipeline({"loss": "square(add(p, neg(t)))"})
    assert result.outcome == "trained", result.reason
    notice = capfd.readouterr().err
    assert notice.count("adapter 'ordinal_cumulative' declares no ordering probes") == 1
    assert pipeline.lrp.settings("loss").protocol == "paper"

    # capped by candidates: before adapters declared their ordering probes, 3,811 explored
    # losses trained none (the softmax check rejected them all); about 1 valid draw in 60 trains
    found = gp_loss.search(task, max_trained=2, max_explored=3000, out=tmp_path / "run", progress=False)
    assert found.state.trained >= 1 and found.state.counts["trained"] >= 1
    assert found.fitness > 0.5  # four levels: chance is about 0.25
