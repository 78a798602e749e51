"""``bench tracking``: what logging to TensorBoard and MLflow costs a search. The same capped
search (same seed, no search cache, serial) runs without tracking and with both trackers
(TensorBoard and a local ``sqlite:///`` MLflow store), alternating which goes first over the
rounds; the table gives each one's wall time (the tracked one's includes waiting for its
trackers at the end) and their ratio, and checks that both explored the same losses with the
same outcomes and fitness."""

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
    """Wall seconds per round, plain and tracked, and whether the searches agreed."""

    task: str
    explored: int
    rounds: list[dict[str, float]] = field(default_factory=list)
    same_events: bool = True
    machine: str = ""

    @property
    def ratio(self) -> float:
        """Median tracked / plain wall time."""
        return statistics.median(r["tracked"] / r["plain"] for r in self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "explored": self.explored,
            "rounds": self.rounds,
            "median_ratio": self.ratio,
            "same_events": self.same_events,
            "machine": self.machine,
        }

    def markdown(self) -> str:
        lines = [
            f"bench tracking: {self.task}, {self.explored} explored per search, serial, no search cache; {self.machine}",
            "",
            "| round | first | plain (s) | tracked: TensorBoard + MLflow sqlite (s) | tracked / plain |",
            "|---:|---|---:|---:|---:|",
        ]
        for index, r in enumerate(self.rounds, 1):
            first = "tracked" if index % 2 == 0 else "plain"
            lines.append(
                f"| {index} | {first} | {r['plain']:.1f} | {r['tracked']:.1f} | {r['tracked'] / r['plain']:.2f} |"
            )
        lines += [
            "",
            f"median tracked / plain: {self.ratio:.2f}; the searches explored the same losses with the same "
            f"outcomes and fitness: {'yes' if self.same_events else 'NO'}",
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
                gp_loss.search(
                    task, max_explored=explored, out=out, cache="off", seed=0, progress=False, **extra
                )
                times[kind] = time.perf_counter() - start
            result.rounds.append(times)
            result.same_events &= _key(root / f"plain-{index}") == _key(root / f"tracked-{index}")
    return result
