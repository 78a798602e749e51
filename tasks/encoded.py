"""A split's features under a frozen encoder, computed once and kept in memory within a bound.

The decoder proxies of pose_coco and seg_voc train a fresh decoder per candidate on a frozen,
trained encoder. The encoder's output for a sample never changes between candidates, so it is
computed once per process and kept, when the whole split fits in ``bound_mb``; otherwise it is
computed again for each batch (the encoder's forward only, no gradient).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from tasks.training import Training

#: An encoder's output: one tensor or a tuple of them (several resolutions), batch first.
Features = torch.Tensor | tuple[torch.Tensor, ...]


def reset_trainable(module: torch.nn.Module) -> None:
    """Initialise ``module``'s layers afresh (seeded by the caller) and make them trainable."""
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    for parameter in module.parameters():
        parameter.requires_grad_(True)


def _parts(features: Features) -> tuple[torch.Tensor, ...]:
    return features if isinstance(features, tuple) else (features,)


def _like(parts: Sequence[torch.Tensor], template: Features) -> Features:
    return tuple(parts) if isinstance(template, tuple) else parts[0]


class EncodedSplit:
    """The frozen ``encoder``'s features of every sample of a split, with their targets.

    Args:
        encoder: inputs -> features (a tensor or a tuple of tensors, batch first).
        size: the split's sample count.
        batch: sample indices -> (inputs, targets), as the training feeds them.
        bound_mb: keep every sample's features in memory when they fit in this many MiB
            (estimated from the first chunk), else recompute them per batch.
        chunk: samples per encoder forward while caching and predicting.
    """

    def __init__(
        self,
        encoder: Callable[[torch.Tensor], Features],
        size: int,
        batch: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]],
        *,
        bound_mb: float,
        chunk: int = 64,
    ) -> None:
        self.encoder, self.size, self._batch, self.chunk = encoder, size, batch, chunk
        first = self._compute(list(range(min(chunk, size))))
        per_sample = sum(t[:1].numel() * t.element_size() for t in (*_parts(first[0]), first[1]))
        self.nbytes = per_sample * size
        self.cached: tuple[Features, torch.Tensor] | None = None
        if self.nbytes <= bound_mb * 2**20:
            chunks = [first] + [
                self._compute(list(range(start, min(start + chunk, size))))
                for start in range(chunk, size, chunk)
            ]
            features = [torch.cat(level) for level in zip(*(_parts(f) for f, _ in chunks))]
            self.cached = (_like(features, first[0]), torch.cat([t for _, t in chunks]))

    @torch.no_grad()
    def _compute(self, indices: list[int]) -> tuple[Features, torch.Tensor]:
        inputs, targets = self._batch(indices)
        return self.encoder(inputs), targets

    def __len__(self) -> int:
        return self.size

    def batch(self, indices: list[int]) -> tuple[Features, torch.Tensor]:
        """Features and targets of these samples."""
        if self.cached is None:
            return self._compute(indices)
        index = torch.tensor(indices, dtype=torch.long)
        features, targets = self.cached
        picked = [part[index.to(part.device)] for part in _parts(features)]
        return _like(picked, features), targets[index.to(targets.device)]

    def chunks(self) -> list[list[int]]:
        """The split's indices in order, ``chunk`` at a time."""
        return [
            list(range(start, min(start + self.chunk, self.size)))
            for start in range(0, self.size, self.chunk)
        ]

    @torch.no_grad()
    def predict(self, decoder: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``decoder``'s outputs (eval mode, float, on the CPU) with the targets, chunk by chunk."""
        decoder.eval()
        out = []
        for indices in self.chunks():
            features, targets = self.batch(indices)
            out.append((decoder(features).float().cpu(), targets.cpu()))
        return out


def decoder_training(
    task,
    split: EncodedSplit,
    build: Callable[[], torch.nn.Module],
    batch_losses: Callable[[torch.nn.Module, Features, torch.Tensor], dict[str, torch.Tensor]],
    *,
    lr: float,
    stop_invalid: bool,
) -> Training:
    """A decoder proxy's run: ``build()`` (a fresh decoder on a frozen trunk) trained
    ``task.steps`` Adam steps at ``lr`` (cosine), each on ``task.batch_size`` seeded random
    samples of ``split``, with the losses ``batch_losses(decoder, features, targets)``."""

    def step_losses(decoder, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(split), (task.batch_size,), generator=generator).tolist()
        features, targets = split.batch(idx)
        return batch_losses(decoder, features, targets)

    return Training(
        build,
        step_losses,
        steps=task.steps,
        seed=task.seed,
        optimizer=lambda params: torch.optim.Adam(params, lr=lr),
        cosine=True,
        stop_invalid=stop_invalid,
        label=f"{task.name} decoder training",
    )
