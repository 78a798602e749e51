"""Reading a run's event log (events.jsonl) and ranking its candidates: what ``show``,
``report``, ``finalize`` and the benches share. Reading never repairs: a torn last line (a run
killed mid-write) is left out, and the run's own resume cuts it off
(:func:`gp_loss.run.jsonl.repair_torn_tail`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.events import CACHED, DUPLICATE, INVALID, PROXY_TRAINED, TRAINED, Event, event_rank, rung_of  # noqa: F401 (rung_of: public)
from gp_loss.run.run_directory import RunDirectory
from gp_loss.trees.best_json import load_json, read_best, read_bytes


def load_events(run: str | Path) -> tuple[dict[str, Any], list[Event]]:
    """run.json and every readable event of a run (read-only: nothing is repaired). A torn
    last line (a run killed mid-write) is left out; so is every line after an unreadable one,
    which is said once on stderr."""
    directory = RunDirectory(run)
    if directory.run_json.exists() or not directory.events_path.exists():
        config = directory.read_config()
    else:
        config = _config_without_run_json(directory)
    events = []
    if directory.events_path.exists():
        lines = read_bytes(directory.events_path, "events.jsonl").split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = load_json(line, f"{directory.events_path} line {number}")
                if not isinstance(event, dict) or "outcome" not in event or "trees" not in event:
                    raise GpLossError(f"{directory.events_path} line {number}: not an event")
            except GpLossError as err:
                if number < len(lines) - 1 or line.endswith(b"}"):  # not just a torn last line
                    print(f"gp-loss: {err}; showing the {len(events)} events before it", file=sys.stderr)
                break
            events.append(event)
    return config, events


def _config_without_run_json(directory: RunDirectory) -> dict[str, Any]:
    """What the run's best.json says of it, when run.json is missing (said once on stderr): show
    and report then work on the events (trees print as trees where no best.json names the
    adapters)."""
    print(f"gp-loss: {directory.run_json} is missing; reading the events and best.json only", file=sys.stderr)
    try:
        best = read_best(directory.best_path)
    except GpLossError:
        return {"task": "unknown", "task_info": {"slots": {}, "metric": "fitness"}}
    slots = {name: {"adapter": loss.adapter, "spatial": True} for name, loss in best.slots.items()}
    info = {"slots": slots, "metric": best.metric or "fitness"}
    return {"task": best.task or "unknown", "task_info": info, "pipeline": {"constant_one": True}}


def trained(events: list[Event]) -> list[Event]:
    """Freshly trained candidates with a fitness, in the order they were explored (duplicates
    and equivalents not repeated)."""
    return [e for e in events if e["outcome"] == TRAINED and e.get("fitness") is not None]


def ranked(events: list[Event]) -> list[Event]:
    """:func:`trained`, best first: by the proxy rung reached, then fitness (scores at
    different rungs are not comparable)."""
    return sorted(trained(events), key=lambda e: (tuple(-v for v in event_rank(e)), e["id"]))


#: The funnel's rows: a name and what a loss must have done to be counted there.
FUNNEL: tuple[tuple[str, str], ...] = (
    ("explored", "every loss the search drew, repeats included"),
    ("valid", "new (not a duplicate, nor judged by an earlier run) and finite on the probe batch"),
    ("passed LRP", "a gradient of its own (not equivalent) that passed the Loss-Rejection Protocol"),
    (TRAINED, "proxy-trained to a fitness without diverging"),
    ("promoted", "trained past the first proxy rung"),
)


def promoted(event: Event) -> bool:
    """The hurdles let the event's candidate past the first proxy rung."""
    return len(event.get("rungs") or ()) > 1


def funnel(events: list[Event]) -> list[tuple[str, int, str]]:
    """How many losses reached each stage of the search (name, count, what it means)."""
    outcomes = [e["outcome"] for e in events]
    counts = (
        len(outcomes),
        sum(o not in (DUPLICATE, CACHED, INVALID) for o in outcomes),
        sum(o in PROXY_TRAINED for o in outcomes),
        sum(o == TRAINED for o in outcomes),
        sum(o == TRAINED and promoted(e) for o, e in zip(outcomes, events)),
    )
    return [(name, count, what) for (name, what), count in zip(FUNNEL, counts)]
