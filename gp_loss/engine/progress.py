"""Live progress of a search: one status line (refreshed in place on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from gp_loss.core.events import (
    CACHED,
    DIVERGED,
    DUPLICATE,
    EQUIVALENT,
    FAILED,
    INVALID,
    REJECTED,
    TIMEOUT,
    TRAINED,
)
from gp_loss.engine.evolution import Hook, Limits, SearchState

_SHORT = {
    DUPLICATE: "dup",
    CACHED: "cache",
    INVALID: "inv",
    EQUIVALENT: "equiv",
    REJECTED: "rej",
    DIVERGED: "div",
    TRAINED: "train",
    TIMEOUT: "t/o",
    FAILED: "fail",
}


def format_seconds(seconds: float) -> str:
    """``75`` -> ``1m15s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressPrinter(Hook):
    """Prints explored count, outcome counts, trained, best fitness and time left.

    On a terminal the line is rewritten in place at most every ``interval`` seconds; otherwise
    (a log file, CI) a full line is printed every ``log_interval`` seconds.
    """

    def __init__(
        self,
        limits: Limits,
        metric: str,
        stream: TextIO | None = None,
        interval: float = 0.5,
        log_interval: float = 10.0,
    ) -> None:
        self.limits = limits
        self.metric = metric
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if self.tty else log_interval
        self._last = 0.0

    def line(self, state: SearchState) -> str:
        """The status line."""
        counts = " ".join(f"{_SHORT.get(k, k)} {v}" for k, v in state.counts.items() if v)
        best = "-" if state.best is None else f"{state.best['fitness']:.4f}"
        left = ""
        if self.limits.budget is not None:
            left = f" | left {format_seconds(self.limits.budget - state.elapsed)}"
        return (
            f"[{format_seconds(state.elapsed)}] explored {state.explored} ({counts}) | trained {state.trained}"
            f" | best {self.metric} {best}{left}"
        )

    def on_event(self, event: dict[str, Any], state: SearchState) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and not event.get("new_best"):
            return
        self._last = now
        if self.tty:
            self.stream.write("\r\033[K" + self.line(state))
        else:
            self.stream.write(self.line(state) + "\n")
        self.stream.flush()

    def on_end(self, state: SearchState, reason: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(self.line(state) + f"\nstopped: {reason}\n")
        self.stream.flush()
