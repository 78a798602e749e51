"""What a search logs to a tracker, derived from its event log alone: replaying events.jsonl
gives the same points as the live search did, so a resumed search can fill in what a kill lost
and skip what was already written (docs/architecture.md section 10)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from gp_loss.core.events import CACHED, OUTCOMES, TRAINED, Event, event_rank
from gp_loss.run.runlog import promoted

#: The explored count, written (with the outcome counts) once per batch of events.
EXPLORED = "search/explored"
#: Reached past the first proxy rung (a candidate the hurdles let through): the funnel's last row.
PROMOTED = "promoted"


@dataclass(frozen=True)
class Point:
    """One logged value: a scalar (``text`` empty) or a text (``value`` unused).

    Attributes:
        tag: the series' name (``fitness/rung_0``, ``best_so_far``, ``outcomes/trained``...).
        step: the number of candidates explored when it was logged (from 1).
        seconds: the search's elapsed time then (across resumes).
    """

    tag: str
    step: int
    seconds: float
    value: float = 0.0
    text: str = ""


def is_trained(event: Event) -> bool:
    """An event that carries a proxy fitness of this search's own (trained now or cached)."""
    return event["outcome"] in (TRAINED, CACHED) and event.get("fitness") is not None


class Projection:
    """Turns a run's events, in order, into tracking points; one instance per run, fed every
    event from the first (so that its counts and best-so-far are the run's own).

    Args:
        formulas: genome -> the best loss's formula as text (one line per slot).
    """

    def __init__(self, formulas: Callable[[dict[str, str]], str]) -> None:
        self.formulas = formulas
        self.counts: Counter[str] = Counter()
        self.best: tuple[int, float] | None = None
        self._changed: set[str] = set()

    def batch(self, events: list[Event]) -> list[Point]:
        """The points of consecutive events: each trained loss's own, then the counts that
        changed and the explored count at the last event (the count series need no finer grain,
        and most events are not trained: one write per batch keeps tracking cheap)."""
        out = [point for event in events for point in self.points(event)]
        if events:
            step, seconds = events[-1]["id"] + 1, float(events[-1].get("time") or 0.0)
            names = [name for name in (*OUTCOMES, PROMOTED) if name in self._changed]
            out += [Point(f"outcomes/{name}", step, seconds, float(self.counts[name])) for name in names]
            out.append(Point(EXPLORED, step, seconds, float(step)))
            self._changed.clear()
        return out

    def points(self, event: Event) -> list[Point]:
        """The points of one event (a trained loss's fitness, the best so far); its outcome is
        counted for :meth:`batch`."""
        step, seconds = event["id"] + 1, float(event.get("time") or 0.0)
        out: list[Point] = []
        outcome = event["outcome"]
        self.counts[outcome] += 1
        self._changed.add(outcome)
        if outcome == TRAINED and promoted(event):
            self.counts[PROMOTED] += 1
            self._changed.add(PROMOTED)
        if is_trained(event):
            for index, rung in enumerate(event.get("rungs") or ()):
                if rung.get("fitness") is not None:
                    out.append(Point(f"fitness/rung_{index}", step, seconds, float(rung["fitness"])))
            out.append(Point("fitness", step, seconds, float(event["fitness"])))
            rank = event_rank(event)
            if self.best is None or rank > self.best:
                self.best = rank
                text = (
                    f"loss #{event['id']}, fitness {event['fitness']:.4f}\n\n{self.formulas(event['trees'])}"
                )
                out.append(Point("best/formula", step, seconds, text=text))
            out.append(Point("best_so_far", step, seconds, self.best[1]))
        return out
