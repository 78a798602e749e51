"""``bench tracking``: what logging to TensorBoard and MLflow costs a search. The same capped
search (same seed, no search cache, serial) runs without tracking and with both trackers
(TensorBoard and a local ``sqlite:///`` MLflow store), alternating which goes first over the
rounds. For each: the search's own clock (what tracking must not slow: the hook only queues)
and the wall time of the whole call (the tracked one's includes the end: report.md, its plots
and report.html written and sent, and the trackers drained). Both must explore the same losses
with the same outcomes and fitness."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gp_loss.bench.timing import machine


@dataclass
class TrackingCost:
    """Seconds per round (``plain``/``tracked``: the whole call; ``*_search``: the search's own
    clock), and whether the two searches agreed."""

    task: str
    explored: int
    rounds: list[dict[str, float]] = field(default_factory=list)
    same_events: bool = True
    machine: str = ""

    @property
    def ratio(self) -> float:
        """Median tracked / plain of the searches' own clocks."""
        return statistics.median(r["tracked_search"] / r["plain_search"] for r in self.rounds)

    @property
    def end_seconds(self) -> float:
        """Median seconds the tracked call spent after its search stopped."""
        return statistics.median(r["tracked"] - r["tracked_search"] for r in self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "explored": self.explored,
            "rounds": self.rounds,
            "median_search_ratio": self.ratio,
            "median_end_seconds": self.end_seconds,
            "same_events": self.same_events,
            "machine": self.machine,
        }

    def markdown(self) -> str:
        lines = [
            f"bench tracking: {self.task}, {self.explored} explored per search, serial, no search cache; {self.machine}",
            "",
            "| round | first | search, plain (s) | search, tracked (s) | tracked / plain | call, plain (s) | call, tracked (s) |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        for index, r in enumerate(self.rounds, 1):
            first = "tracked" if index % 2 == 0 else "plain"
            ratio = r["tracked_search"] / r["plain_search"]
            lines.append(
                f"| {index} | {first} | {r['plain_search']:.1f} | {r['tracked_search']:.1f} | {ratio:.2f} "
                f"| {r['plain']:.1f} | {r['tracked']:.1f} |"
            )
        agreed = "yes" if self.same_events else "NO"
        lines += [
            "",
            f"median search tracked / plain: {self.ratio:.2f}; the tracked call's end (reports written and "
            f"sent, trackers drained): {self.end_seconds:.1f} s; same losses, outcomes and fitness: {agreed}",
        ]
        return "\n".join(lines)


def _key(run: Path) -> list[tuple]:
    import json

    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line]
    return [(e["trees"], e["outcome"], e.get("fitness")) for e in events]


def run(task: str = "cls_digits", explored: int = 400, rounds: int = 3) -> TrackingCost:
    """Measure ``rounds`` pairs of searches, alternating which runs first."""
    import gp_loss

    result = TrackingCost(task, explored, machine=machine())
    with tempfile.TemporaryDirectory(prefix="gp-loss-bench-tracking-") as scratch:
        root = Path(scratch)
        for index in range(rounds):
            times: dict[str, float] = {}
            order = ("plain", "tracked") if index % 2 == 0 else ("tracked", "plain")
            for kind in order:
                out = root / f"{kind}-{index}"
                extra = (
                    {"tensorboard": root / "tb", "mlflow": f"sqlite:///{root / 'mlflow.db'}"}
                    if kind == "tracked"
                    else {}
                )
                start = time.perf_counter()
                found = gp_loss.search(
                    task, max_explored=explored, out=out, cache="off", seed=0, progress=False, **extra
                )
                times[kind] = time.perf_counter() - start
                times[f"{kind}_search"] = found.state.elapsed
            result.rounds.append(times)
            result.same_events &= _key(root / f"plain-{index}") == _key(root / f"tracked-{index}")
    return result
