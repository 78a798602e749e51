"""Fixed stratified splits of a labelled source set."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def stratified_split(
    labels: np.ndarray, rng: np.random.Generator, fraction: float = 0.2
) -> dict[str, np.ndarray]:
    """Per class: ``fraction`` to test, ``fraction`` to val, the rest to train (sorted indices)."""
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_test = n_val = round(fraction * len(idx))
        parts["test"] += idx[:n_test].tolist()
        parts["val"] += idx[n_test : n_test + n_val].tolist()
        parts["train"] += idx[n_test + n_val :].tolist()
    return {s: np.array(sorted(v), dtype=np.int64) for s, v in parts.items()}
