"""Hand-written segmentation baselines the tree space cannot express.

- weighted cross-entropy with median-frequency class weights (Eigen and Fergus, 2015);
- Lovasz-softmax (Berman et al., 2018): the Lovasz extension of the per-class Jaccard loss.

Both take ``(logits (N, C, H, W), labels (N, H, W))`` and skip pixels labelled 255.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

IGNORE = 255


def median_frequency_weights(frequencies: np.ndarray) -> torch.Tensor:
    """w_c = median(f) / f_c over the classes that occur; 1 for classes that never occur."""
    freq = np.asarray(frequencies, dtype=np.float64)
    seen = freq > 0
    weights = np.ones_like(freq)
    if seen.any():
        weights[seen] = np.median(freq[seen]) / freq[seen]
    return torch.tensor(weights, dtype=torch.float32)


class WeightedCrossEntropy(nn.Module):
    """``F.cross_entropy`` with fixed class weights and ignore index 255."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, weight=self.weights.to(logits.dtype), ignore_index=IGNORE)


def lovasz_gradient(foreground_sorted: torch.Tensor) -> torch.Tensor:
    """Increments of the Jaccard loss along pixels sorted by decreasing error.

    ``foreground_sorted`` is the 0/1 ground truth of one class in that order; entry i is
    Delta(S_i) - Delta(S_{i-1}) with S_i the first i pixels counted as errors.
    """
    total = foreground_sorted.sum()
    intersection = total - foreground_sorted.cumsum(0)
    union = total + (1 - foreground_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_softmax(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Lovasz-softmax over the whole batch, averaged over the classes present in ``labels``."""
    probs = torch.softmax(logits, dim=1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    labels = labels.reshape(-1)
    keep = labels != IGNORE
    probs, labels = probs[keep], labels[keep]
    losses = []
    for c in torch.unique(labels).tolist():
        foreground = (labels == c).to(probs.dtype)
        errors = (foreground - probs[:, c]).abs()
        errors_sorted, order = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_gradient(foreground[order])))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).mean()


class LovaszSoftmax(nn.Module):
    """:func:`lovasz_softmax` as a module."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return lovasz_softmax(logits, labels)
