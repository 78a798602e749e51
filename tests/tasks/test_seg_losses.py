"""Hand-written segmentation baselines: Lovasz-softmax against its definition, weighted CE."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tasks.segmentation.losses import (
    LovaszSoftmax,
    WeightedCrossEntropy,
    lovasz_softmax,
    median_frequency_weights,
)


def _jaccard_loss(foreground: set[int], errors: set[int]) -> float:
    """Delta_J(S): 1 - |fg minus S| / |fg union S|, by set operations."""
    union = foreground | errors
    return 1.0 - len(foreground - errors) / len(union) if union else 0.0


def _lovasz_by_definition(probs: np.ndarray, labels: np.ndarray) -> float:
    """The Lovasz extension of Delta_J for each present class, summed over sorted errors."""
    losses = []
    for c in np.unique(labels):
        foreground = {int(i) for i in np.flatnonzero(labels == c)}
        errors = np.abs((labels == c).astype(float) - probs[:, c])
        order = sorted(range(len(errors)), key=lambda i: -errors[i])
        total, chosen = 0.0, set()
        for i in order:
            before = _jaccard_loss(foreground, chosen)
            chosen.add(i)
            total += errors[i] * (_jaccard_loss(foreground, chosen) - before)
        losses.append(total)
    return float(np.mean(losses))


def test_lovasz_softmax_matches_its_definition():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 3, 5))
    labels[0, 0, :2] = 255
    ours = float(lovasz_softmax(logits, labels))
    probs = torch.softmax(logits, 1).permute(0, 2, 3, 1).reshape(-1, 4).numpy()
    flat = labels.reshape(-1).numpy()
    keep = flat != 255
    assert ours == pytest.approx(_lovasz_by_definition(probs[keep], flat[keep]), abs=1e-10)


def test_lovasz_extension_equals_jaccard_loss_on_hard_errors():
    """On 0/1 errors the extension is Delta_J itself (Berman et al., eq. 8)."""
    labels = np.array([0, 0, 1, 1, 1, 0])
    for picks in itertools.product([0, 1], repeat=6):
        probs = np.zeros((6, 2))
        probs[np.arange(6), np.where(np.array(picks) == 1, labels, 1 - labels)] = 1.0
        expected = np.mean(
            [
                _jaccard_loss(set(np.flatnonzero(labels == c)), set(np.flatnonzero(np.array(picks) == 0)))
                for c in (0, 1)
            ]
        )
        assert _lovasz_by_definition(probs, labels) == pytest.approx(expected)


def test_lovasz_is_small_for_confident_right_answers_and_trains():
    labels = torch.randint(0, 3, (2, 6, 6), generator=torch.Generator().manual_seed(1))
    right = F.one_hot(labels, 3).permute(0, 3, 1, 2).double() * 30
    assert float(lovasz_softmax(right, labels)) < 1e-10
    logits = torch.zeros(2, 3, 6, 6, requires_grad=True)
    LovaszSoftmax()(logits, labels).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    void = torch.full_like(labels, 255)
    assert float(lovasz_softmax(logits.detach(), void)) == 0.0


def test_median_frequency_weights_hand_computed():
    weights = median_frequency_weights(np.array([0.5, 0.25, 0.125, 0.125, 0.0]))
    # median of the seen frequencies is (0.125 + 0.25) / 2
    expected = torch.tensor([0.375, 0.75, 1.5, 1.5, 1.0], dtype=torch.float32)
    assert torch.allclose(weights, expected)


def test_weighted_cross_entropy_is_torch_weighted_cross_entropy():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    labels[0, 0] = 255
    weights = torch.tensor([0.2, 1.0, 3.0])
    log_p = torch.log_softmax(logits, 1)
    keep = labels != 255
    safe = labels.clamp(max=2)
    picked = -log_p.gather(1, safe[:, None])[:, 0]
    w = weights[safe]
    reference = (picked * w)[keep].sum() / w[keep].sum()
    assert torch.allclose(WeightedCrossEntropy(weights)(logits, labels), reference)
