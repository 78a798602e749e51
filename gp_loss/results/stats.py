"""Paired comparisons over seeds: is a loss better than a baseline, or only lucky?

Two losses retrained with the same seeds give paired results; the difference per seed removes
what the seed shares (initialisation, batch order). The 95% interval of the mean difference
uses Student's t with n - 1 degrees of freedom (n paired seeds; a t interval rather than a
bootstrap, which cannot do better than the n values themselves at n = 3 to 10). A winner *beats*
the baseline only when the whole interval lies above 0, *loses* when it lies below, and *ties*
otherwise; with one paired seed there is no interval and the comparison is *undetermined*.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: The verdicts, from the candidate's point of view.
VERDICTS = ("beats", "ties", "loses", "undetermined")


@dataclass(frozen=True)
class PairedDifference:
    """Mean of candidate - baseline over the paired seeds, its standard deviation, the number of
    pairs and the confidence interval (``None`` below two pairs)."""

    mean: float
    std: float
    n: int
    low: float | None
    high: float | None
    level: float = 0.95

    @property
    def verdict(self) -> str:
        """``beats``, ``ties``, ``loses`` or ``undetermined`` (see the module docstring)."""
        if self.low is None or self.high is None:
            return "undetermined"
        if self.low > 0:
            return "beats"
        if self.high < 0:
            return "loses"
        return "ties"

    def to_json(self) -> dict[str, Any]:
        """A JSON object with the verdict."""
        return {**asdict(self), "verdict": self.verdict}


def half_width(std: float, n: int, level: float = 0.95) -> float:
    """Half-width of the ``level`` Student's t interval of a mean of ``n`` >= 2 values whose
    standard deviation is ``std``."""
    from scipy.stats import t

    return float(t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)


def paired_difference(
    candidate: Sequence[float | None], baseline: Sequence[float | None], level: float = 0.95
) -> PairedDifference:
    """The paired difference of two per-seed result lists (same seeds, same order); a seed where
    either training diverged (``None``) is left out of the pairs."""
    pairs = [(a, b) for a, b in zip(candidate, baseline) if a is not None and b is not None]
    differences = [a - b for a, b in pairs]
    n = len(differences)
    if n == 0:
        return PairedDifference(math.nan, math.nan, 0, None, None, level)
    mean = statistics.fmean(differences)
    if n == 1:
        return PairedDifference(mean, 0.0, 1, None, None, level)
    std = statistics.stdev(differences)
    half = half_width(std, n, level)
    return PairedDifference(mean, std, n, mean - half, mean + half, level)
