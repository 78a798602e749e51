"""Side-by-side timing: interleaved rounds so that machine noise hits every contender alike."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Mapping

import torch


def machine() -> str:
    """One line describing where a benchmark ran."""
    return (
        f"{platform.node() or 'unknown host'}, {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"python {platform.python_version()}, torch {torch.__version__}"
    )


def interleaved(
    contenders: Mapping[str, Callable[[], object]], rounds: int = 7, repeats: int = 10
) -> dict[str, float]:
    """Median seconds per call of each contender, over ``rounds`` interleaved rounds."""
    for fn in contenders.values():  # warm-up: allocator, lazy init
        fn()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            samples[name].append((time.perf_counter() - start) / repeats)
    return {name: statistics.median(values) for name, values in samples.items()}
