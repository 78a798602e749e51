"""The reference segmentation losses, each as its reference code computes it.

- cross-entropy: ``F.cross_entropy`` with ignore index 255;
- weighted cross-entropy with median-frequency class weights (Eigen and Fergus, 2015);
- soft Dice as segmentation_models_pytorch's ``DiceLoss`` (multiclass mode, from logits,
  ``smooth`` 0): per batch, 1 - 2 sum(p y) / sum(p + y) per class, classes absent from the
  batch's labels contribute 0 and count in the mean over classes;
- softmax focal loss (Lin et al., 2017) with gamma 2 and no alpha: -(1 - p_t)^2 log p_t, the
  mean over labelled pixels;
- Lovasz-softmax (Berman et al., 2018) at the reference code's defaults (``per_image=False``,
  ``classes='present'``): the Lovasz extension of the per-class Jaccard loss over the batch,
  averaged over the classes present.

All take ``(logits (N, C, H, W), labels (N, H, W))`` and skip pixels labelled 255.
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


class CrossEntropy(nn.Module):
    """``F.cross_entropy`` with ignore index 255."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, ignore_index=IGNORE)


def _labelled_one_hot(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and one-hot targets (N, C, H*W), both zero at ignored pixels."""
    n, c = logits.shape[:2]
    keep = (labels != IGNORE).reshape(n, 1, -1)
    probs = torch.softmax(logits, dim=1).reshape(n, c, -1) * keep
    safe = torch.where(labels == IGNORE, torch.zeros_like(labels), labels).reshape(n, -1)
    target = F.one_hot(safe.long(), c).permute(0, 2, 1).to(probs.dtype) * keep
    return probs, target


class DiceLoss(nn.Module):
    """segmentation_models_pytorch's multiclass ``DiceLoss`` (see the module docstring)."""

    def __init__(self, eps: float = 1e-7) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        probs, target = _labelled_one_hot(logits, labels)
        intersection = (probs * target).sum(dim=(0, 2))
        cardinality = (probs + target).sum(dim=(0, 2))
        loss = 1.0 - 2.0 * intersection / cardinality.clamp(min=self.eps)
        present = target.sum(dim=(0, 2)) > 0
        return (loss * present.to(loss.dtype)).mean()


class FocalLoss(nn.Module):
    """Softmax focal loss -(1 - p_t)^gamma log p_t over the labelled pixels (gamma 2)."""

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        keep = labels != IGNORE
        if not bool(keep.any()):
            return logits.sum() * 0.0
        log_p = torch.log_softmax(logits, dim=1)
        safe = torch.where(keep, labels, torch.zeros_like(labels)).long()
        log_pt = log_p.gather(1, safe.unsqueeze(1)).squeeze(1)[keep]
        return (-((1 - log_pt.exp()) ** self.gamma) * log_pt).mean()


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
