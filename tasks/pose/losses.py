"""Hand-written heatmap losses: the joints MSE every pose model trains with, and a peer."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def joints_mse(heatmaps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the labelled keypoints' heatmaps (a negative target marks a
    keypoint without a label, left out); 0 with a graph where none is labelled. The ``mse``
    tree computes exactly this; SimpleBaseline's JointsMSELoss is half of it times the share of
    labelled keypoints."""
    labelled = targets >= 0
    if not bool(labelled.any()):
        return heatmaps.sum() * 0.0
    return ((heatmaps - targets)[labelled] ** 2).mean()


def softmax_kl(heatmaps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """KL divergence from each labelled keypoint's target, normalised to a distribution over the
    map, to the softmax of its predicted heatmap (the distribution-matching heatmap loss of
    integral-regression and SimCC-style pose models); the mean over labelled keypoints, 0 with a
    graph where there are none."""
    labelled = (targets >= 0).flatten(2).all(dim=2)
    if not bool(labelled.any()):
        return heatmaps.sum() * 0.0
    target = targets.clamp(min=0).flatten(2)[labelled]
    target = target / target.sum(dim=1, keepdim=True).clamp(min=1e-12)
    log_predicted = F.log_softmax(heatmaps.flatten(2)[labelled], dim=1)
    return (target * (torch.log(target.clamp(min=1e-12)) - log_predicted)).sum(dim=1).mean()
