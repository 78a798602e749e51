"""pose_coco's cheap proxy: a fresh decoder trained on a frozen encoder.

The network's encoder is trained once with the joints MSE (kept on disk by
:mod:`tasks.trunk_cache`); each proxy training then trains a freshly initialised decoder (the
deconvolutions and the per-keypoint convolution) with the candidate's loss on the encoder's
features of the training people, which are computed once per process and kept in memory within
a stated bound. The searched loss shapes the heatmaps the decoder draws, as it shapes a whole
network's in the final training, at a fraction of the cost.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from tasks.pose.coco_keypoints import CocoKeypoints


class Decoder(nn.Sequential):
    """A pose network's decoder and final convolution: features -> heatmaps."""


def fresh_decoder(trunk: nn.Module) -> Decoder:
    """A copy of the trunk's decoder and final convolution, freshly initialised (seeded by the
    caller) and trainable."""
    decoder = Decoder(copy.deepcopy(trunk.decoder), copy.deepcopy(trunk.final))
    for module in decoder.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    for parameter in decoder.parameters():
        parameter.requires_grad_(True)
    return decoder.train()


class EncodedPersons:
    """The frozen encoder's features of every person of a split, with their target heatmaps:
    computed once and kept when they fit in ``bound_mb`` (estimated from the first batch),
    otherwise computed again for each batch asked for (the encoder's forward only)."""

    def __init__(
        self,
        encoder: nn.Module,
        data: CocoKeypoints,
        batch: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]],
        *,
        bound_mb: float,
        chunk: int = 64,
    ) -> None:
        self.encoder, self.data, self._batch, self.chunk = encoder.eval(), data, batch, chunk
        first = self._compute(list(range(min(chunk, len(data)))))
        per_person = sum(t[0].numel() * t[0].element_size() for t in (first[0][:1], first[1][:1]))
        self.nbytes = per_person * len(data)
        self.cached: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.nbytes <= bound_mb * 2**20:
            parts = [first] + [
                self._compute(list(range(start, min(start + chunk, len(data)))))
                for start in range(chunk, len(data), chunk)
            ]
            self.cached = (torch.cat([f for f, _ in parts]), torch.cat([t for _, t in parts]))

    @torch.no_grad()
    def _compute(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = self._batch(indices)
        return self.encoder(images), targets

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and target heatmaps of these people."""
        if self.cached is not None:
            index = torch.tensor(indices, dtype=torch.long)
            return self.cached[0][index], self.cached[1][index]
        return self._compute(indices)

    @torch.no_grad()
    def predict(self, decoder: nn.Module) -> torch.Tensor:
        """Heatmaps ``decoder`` draws for every person (eval mode), on the CPU."""
        decoder.eval()
        out = [
            decoder(self.batch(list(range(start, min(start + self.chunk, len(self)))))[0]).float().cpu()
            for start in range(0, len(self), self.chunk)
        ]
        return torch.cat(out) if out else torch.zeros((0, 17, *self.data.heatmap_size))
