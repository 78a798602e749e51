"""The tracking backends a run names, and what they all share: the run's settings as params,
its origin in time, and the one line that says a backend stopped."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Protocol, TextIO

from gp_loss.core.settings import TrackingOptions
from gp_loss.tracking.points import Point


class Sink(Protocol):
    """A tracking backend, as the tracker drives it from its thread (any exception it raises
    drops it, with one line)."""

    name: str

    def open(self, run: Path, params: dict[str, Any], created: float) -> dict[str, int]:
        """Start (or continue) this run's record; per tag, the last step it already holds."""

    def write(self, points: list[Point]) -> None:
        """Log points (steps above what :meth:`open` returned), in order."""

    def finish(
        self, step: int, texts: dict[str, str], scalars: dict[str, float], files: list[Path], status: str
    ) -> None:
        """The end of a search, or of ``finalize``: texts, scalars at ``step``, the run's files."""

    def close(self) -> None:
        """Let go of the backend."""


def sinks(options: TrackingOptions, run: Path) -> list[Sink]:
    """The backends ``options`` names, not yet opened."""
    from gp_loss.tracking.mlflow_run import MlflowSink
    from gp_loss.tracking.tensorboard import TensorBoardSink

    found: list[Sink] = []
    if options.tensorboard:
        found.append(TensorBoardSink(Path(options.tensorboard) / run.name))
    if options.mlflow:
        found.append(MlflowSink(options.mlflow))
    return found


def flat_settings(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """run.json's settings as flat ``group.name`` params (run metadata left out)."""
    skip = {"format", "created", "command", "versions", "task_info", "resumes", "tracking"}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if not prefix and key in skip:
            continue
        if isinstance(value, dict) and value:
            out.update(flat_settings(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def created_at(config: dict[str, Any]) -> float:
    """The run's start as a Unix time (the origin of every point's wall time)."""
    try:
        return _dt.datetime.fromisoformat(config["created"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0


def report_failure(sink: Sink, err: BaseException, stream: TextIO) -> None:
    """One line: which backend stopped, and why (its first line)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    print(
        f"gp-loss: tracking to {sink.name} stopped ({text[:200]}); the search goes on",
        file=stream,
        flush=True,
    )
