"""Multi-fidelity proxy training: rungs and hurdles (successive halving, as in ASHA and the
Evolved Transformer's progressive dynamic hurdles).

A candidate that passes the Loss-Rejection Protocol trains to its first rung (a fraction of the
proxy steps) and is scored there. It trains on, from where it stopped, to the next rung only if
that score clears the rung's hurdle: the score that the top ``promote`` share of the earlier
candidates reached at the same rung. The driver computes the hurdles when it sends a candidate
out (from the search state, so a resumed run computes the same ones) and the candidate carries
them to wherever it is evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gp_loss.core.errors import GpLossError


def rung_steps(task, fractions: Sequence[float]) -> list[int]:
    """Fractions of the task's proxy steps as ascending step counts (at least 1 each)."""
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise GpLossError("rungs are fractions of the proxy steps in (0, 1], e.g. 0.25,1")
    if len(fractions) == 1 and fractions[0] == 1:
        return [task.steps]  # one rung: the plain proxy training, whatever the task's steps
    if not task.steps:
        raise GpLossError(f"task {task.name!r} does not train its proxy in steps: it has one rung only")
    return sorted({max(1, round(f * task.steps)) for f in fractions})


def hurdle(reached: Sequence[float], promote: float) -> float | None:
    """The score to beat at a rung, given what earlier candidates reached there: the
    ``1 - promote`` quantile (the lower of the two neighbouring values), or ``None`` (promote
    everybody) while fewer than ``1 / promote`` candidates have reached the rung."""
    if not 0 < promote <= 1:
        raise GpLossError(f"--promote must be in (0, 1], got {promote}")
    if promote == 1 or len(reached) < math.ceil(1 / promote):
        return None
    ordered = sorted(reached, reverse=True)
    keep = max(1, math.floor(promote * len(ordered)))
    return float(ordered[keep - 1])


def hurdles(history: Sequence[Sequence[float]], rungs: int, promote: float) -> list[float | None]:
    """The hurdle of every rung but the last, from the scores earlier candidates reached there."""
    return [hurdle(history[i] if i < len(history) else (), promote) for i in range(rungs - 1)]


def clears(score: float, bar: float | None, worst: float) -> bool:
    """Whether a score at a rung earns the next one: at least the hurdle, and better than the
    worst fitness (a loss that learned nothing never continues, even past a hurdle of zero)."""
    return bar is None or (score >= bar and score > worst)
