"""The search's tracker: a hook that hands each event to a background thread, which logs it to
TensorBoard and MLflow. Tracking never slows or breaks a search: the hook only queues, and a
backend that fails is reported once and dropped while the search goes on."""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import TrackingOptions
from gp_loss.engine.evolution import Hook, SearchState
from gp_loss.run.runlog import load_events
from gp_loss.tracking.points import Point, Projection
from gp_loss.tracking.sinks import Sink, created_at, flat_settings, report_failure, sinks

#: Seconds :meth:`Tracker.close` waits for the backends to take what is queued.
CLOSE_WAIT = 60.0
#: Events are sent in batches gathered over this many seconds (or of this many events).
FLUSH_SECONDS = 2.0
BATCH_EVENTS = 2000


class Tracker(Hook):
    """Logs a run's events to its tracking backends from a background thread.

    The thread first replays the run's events already on disk (a resumed run), writing, per
    series, only the steps each backend lacks, so that a kill at any moment loses no point and a
    resume writes none twice. Events are gathered for :data:`FLUSH_SECONDS` and written in one
    call per backend.
    """

    def __init__(self, run: str | Path, options: TrackingOptions, stream: TextIO | None = None) -> None:
        self.run = Path(run)
        self.options = options
        self.stream = stream or sys.stderr
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()  # events; None: the end
        self._thread = threading.Thread(target=self._work, name="gp-loss-tracking", daemon=True)
        self._status = "FINISHED"
        self.sinks: list[Sink] = []
        self.last_step = 0
        # what is on disk now is replayed; what the search adds from here comes by the queue
        self._config, self._events = load_events(self.run)
        self._thread.start()

    # -- the search's side: never blocks -------------------------------------------------
    def on_event(self, event: dict[str, Any], state: SearchState) -> None:
        self._queue.put(event)

    def close(self, interrupted: bool = False) -> None:
        """Finish logging (files and status at the end); waits at most :data:`CLOSE_WAIT` s."""
        self._status = "KILLED" if interrupted else "FINISHED"
        self._queue.put(None)
        self._thread.join(CLOSE_WAIT)
        if self._thread.is_alive():
            print(
                f"gp-loss: tracking still busy after {CLOSE_WAIT:.0f}s; left behind (the run directory "
                "is complete, and a resume logs what is missing)",
                file=self.stream,
                flush=True,
            )

    # -- the thread ---------------------------------------------------------------------------
    def _work(self) -> None:
        config, events = self._config, self._events
        self.projection = Projection(_formulas(config))
        params, created = flat_settings(config), created_at(config)
        done: dict[int, dict[str, int]] = {}
        for sink in sinks(self.options, self.run):
            try:
                done[id(sink)] = sink.open(self.run, params, created)
                self.sinks.append(sink)
            except Exception as err:
                self._drop(sink, err)
        self._send(events, done)
        while True:
            batch = self._batch()
            self._send([event for event in batch if event is not None], done)
            if batch[-1] is None:
                break
        self._finish()

    def _batch(self) -> list[dict[str, Any] | None]:
        """What arrives in :data:`FLUSH_SECONDS` from the first item on (or up to the end of the
        search): one write per backend per batch, so that the thread's work, which shares the
        interpreter with the search, stays a small fraction of it."""
        item = self._queue.get()
        batch = [item]
        deadline = time.monotonic() + FLUSH_SECONDS
        while item is not None and len(batch) < BATCH_EVENTS:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            batch.append(item)
        return batch

    def _send(self, events: list[dict[str, Any]], done: dict[int, dict[str, int]]) -> None:
        points: list[Point] = self.projection.batch(events)
        if not points:
            return
        self.last_step = points[-1].step
        for sink in list(self.sinks):
            logged = done[id(sink)]  # per tag, the last step the backend already holds
            fresh = [p for p in points if p.step > logged.get(p.tag, 0)]
            if fresh:
                self._call(sink, "write", fresh)

    def _finish(self) -> None:
        from gp_loss.tracking.artifacts import end_of_search

        texts, scalars, files = end_of_search(self.run)
        for sink in list(self.sinks):
            self._call(sink, "finish", self.last_step, texts, scalars, files, self._status)
        for sink in self.sinks:
            sink.close()

    def _call(self, sink: Sink, method: str, *args: Any) -> None:
        try:
            getattr(sink, method)(*args)
        except Exception as err:
            self._drop(sink, err)

    def _drop(self, sink: Sink, err: BaseException) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)
        report_failure(sink, err, self.stream)


def _formulas(config: dict[str, Any]):
    """genome -> one line per slot with its formula (the tree where it cannot be read)."""
    from gp_loss.results.report import signatures_of, slot_formula

    try:
        signatures = signatures_of(config)
    except GpLossError:
        signatures = {}

    def text(genome: dict[str, str]) -> str:
        return "\n".join(
            f"{slot}: {slot_formula(tree, signatures.get(slot))}" for slot, tree in genome.items()
        )

    return text
