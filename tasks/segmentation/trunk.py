"""seg_voc's cheap proxy: a fresh classifier trained on a frozen, trained network's features.

The network is trained once with cross-entropy (kept on disk by :mod:`tasks.trunk_cache`);
each proxy training then trains a freshly initialised classifier (the model's
``decoder_parts``: the 1 x 1 convolution that turns the last features into logits) with the
candidate's loss on those features of the training images, at the features' own resolution
(1/2 for the small network, 1/8 for DeepLab; the label masks are subsampled to it). The
features are computed once per process and kept in memory within a stated bound
(:class:`tasks.encoded.EncodedSplit`). ``bench fidelity --task seg_voc --versus proxy=full``
measures how this ranks losses against whole-network trainings (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tasks.encoded import Features, reset_trainable


def nearest_labels(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W) label masks subsampled to ``size`` by nearest neighbour (void stays void)."""
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    resized = nn.functional.interpolate(masks[:, None].float(), size=tuple(size), mode="nearest")
    return resized[:, 0].to(masks.dtype)


class ProxyDecoder(nn.Module):
    """The trunk's decoder layers, freshly initialised and trainable, mapping the frozen
    encoder's features to logits at the features' resolution.

    The trunk's other layers are shared with the trunk, not copied: the trunk must be frozen
    (as :func:`tasks.trunk_cache.cached_trunk` returns it), and the decoder never runs them.
    """

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        parts = [trunk.get_submodule(name) for name in trunk.decoder_parts]
        trained = {id(t) for part in parts for t in (*part.parameters(), *part.buffers())}
        shared = {id(t): t for t in (*trunk.parameters(), *trunk.buffers()) if id(t) not in trained}
        if any(t.requires_grad for t in shared.values()):
            raise ValueError("ProxyDecoder needs a frozen trunk (its shared layers would train)")
        self.net = copy.deepcopy(trunk, memo=dict(shared))
        for name in trunk.decoder_parts:
            reset_trainable(self.net.get_submodule(name))
        self.train()

    def forward(self, features: Features) -> torch.Tensor:
        return self.net.decode(features)
