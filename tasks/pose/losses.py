"""Hand-written heatmap losses: the references (SimpleBaseline's JointsMSELoss, Adaptive Wing),
the joints MSE the proxy trunk trains with, and a distribution-matching peer.

A negative target marks a keypoint without a label; the references take its target weight as 0
(SimpleBaseline's ``target_weight``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def target_weights(targets: torch.Tensor) -> torch.Tensor:
    """SimpleBaseline's ``target_weight``: 1 for a labelled keypoint, 0 for one without a label
    (a negative target), shaped (N, K, 1, 1) to multiply heatmaps."""
    return (targets >= 0).flatten(2).all(dim=2).to(targets.dtype)[..., None, None]


class JointsMSELoss(nn.Module):
    """SimpleBaseline's ``JointsMSELoss(use_target_weight=True)`` (Xiao et al., 2018): the mean
    over joints of 0.5 x ``nn.MSELoss`` between the weighted predicted and target heatmaps, that
    is 0.5 x the mean of (w (y_hat - y))^2 over all N x K x H x W elements, unlabelled joints
    counting as zeros."""

    def forward(self, heatmaps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = target_weights(targets)
        return 0.5 * F.mse_loss(heatmaps * weight, targets.clamp(min=0) * weight)


class AdaptiveWingLoss(nn.Module):
    """Adaptive Wing loss (Wang et al., ICCV 2019) at the paper's and mmpose's settings (alpha
    2.1, omega 14, epsilon 1, theta 0.5), with target weights as mmpose's
    ``AdaptiveWingLoss(use_target_weight=True)``: the mean over all elements of

        omega ln(1 + (|y - y_hat| / epsilon)^(alpha - y))      where |y - y_hat| < theta,
        A |y - y_hat| - C                                       elsewhere,

    with A and C making it continuous and smooth at theta. The exponent alpha - y makes it
    L1-like on the background (y = 0 -> 2.1) and sharper at the peaks (y = 1 -> 1.1), the
    foreground/background imbalance the loss was built for."""

    def __init__(self, alpha: float = 2.1, omega: float = 14.0, epsilon: float = 1.0, theta: float = 0.5):
        super().__init__()
        self.alpha, self.omega, self.epsilon, self.theta = alpha, omega, epsilon, theta

    def forward(self, heatmaps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = target_weights(targets)
        y, y_hat = targets.clamp(min=0) * weight, heatmaps * weight
        delta = (y - y_hat).abs()
        power = self.alpha - y
        ratio = self.theta / self.epsilon
        a = self.omega / (1 + ratio**power) * power * ratio ** (power - 1) / self.epsilon
        c = self.theta * a - self.omega * torch.log1p(ratio**power)
        near = self.omega * torch.log1p((delta / self.epsilon).clamp(max=self.theta / self.epsilon) ** power)
        return torch.where(delta < self.theta, near, a * delta - c).mean()
