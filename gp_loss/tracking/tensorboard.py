"""Logging a search to TensorBoard: one event directory per run, under ``--tensorboard DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gp_loss.tracking.points import Point


class TensorBoardSink:
    """Scalars and texts through ``torch.utils.tensorboard``; a resumed search appends a new
    event file to the same directory, after the last step the old files hold."""

    name = "TensorBoard"

    def __init__(self, logdir: str | Path) -> None:
        self.logdir = Path(logdir)
        self.writer: Any = None
        self.base = 0.0

    def open(self, run: Path, params: dict[str, Any], created: float) -> dict[str, int]:
        """Start writing; returns, per tag, the last step already logged."""
        from torch.utils.tensorboard import SummaryWriter

        done = _logged(self.logdir)
        self.base = created
        self.writer = SummaryWriter(str(self.logdir), flush_secs=5)
        if "run/settings" not in done:
            table = "\n".join(f"| {k} | {v} |" for k, v in params.items())
            self.writer.add_text("run/settings", "| setting | value |\n|---|---|\n" + table, 0, created)
        return done

    def write(self, points: list[Point]) -> None:
        for point in points:
            walltime = self.base + point.seconds
            if point.text:
                self.writer.add_text(point.tag, point.text, point.step, walltime)
            else:
                self.writer.add_scalar(point.tag, point.value, point.step, walltime)
        self.writer.flush()

    def finish(
        self, step: int, texts: dict[str, str], scalars: dict[str, float], files: list[Path], status: str
    ) -> None:
        """Texts and scalars at the last step (the finalists' table); TensorBoard keeps no files."""
        for tag, text in texts.items():
            self.writer.add_text(tag, text, step)
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _logged(logdir: Path) -> dict[str, int]:
    """Per scalar or text tag, the last step the directory's event files hold."""
    if not logdir.is_dir() or not any(p.name.startswith("events.out.tfevents") for p in logdir.iterdir()):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(
        str(logdir), size_guidance={"scalars": 0, "tensors": 0}, purge_orphaned_data=False
    )
    accumulator.Reload()
    tags = accumulator.Tags()
    last = {tag: max(e.step for e in accumulator.Scalars(tag)) for tag in tags.get("scalars", ())}
    for tag in tags.get("tensors", ()):  # add_text's tags end in /text_summary
        last[tag.removesuffix("/text_summary")] = max(e.step for e in accumulator.Tensors(tag))
    return last
