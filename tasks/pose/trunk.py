"""pose_coco's cheap proxy: a fresh decoder trained on a frozen encoder.

The network's encoder is trained once with the joints MSE (kept on disk by
:mod:`tasks.trunk_cache`); each proxy training then trains a freshly initialised decoder (the
deconvolutions and the per-keypoint convolution) with the candidate's loss on the encoder's
features of the training people, which are computed once per process and kept in memory within
a stated bound (:class:`tasks.encoded.EncodedSplit`). The searched loss shapes the heatmaps the
decoder draws, as it shapes a whole network's in the final training, at a fraction of the cost.
"""

from __future__ import annotations

import copy

from torch import nn

from tasks.encoded import reset_trainable


class Decoder(nn.Sequential):
    """A pose network's decoder and final convolution: features -> heatmaps."""


def fresh_decoder(trunk: nn.Module) -> Decoder:
    """A copy of the trunk's decoder and final convolution, freshly initialised (seeded by the
    caller) and trainable."""
    decoder = Decoder(copy.deepcopy(trunk.decoder), copy.deepcopy(trunk.final))
    reset_trainable(decoder)
    return decoder.train()
