"""The run directory (docs/architecture.md section 6): run.json, events.jsonl, checkpoint.json, best.json.

Crash safety: after each explored loss the checkpoint (with that loss's event inside) is
replaced atomically *first*, then the event line is appended and fsynced. A kill at any moment
leaves either the old state (the loss was never reported) or the new state, whose event is
re-appended on resume if it had not reached events.jsonl. Earlier lines are never rewritten;
only a torn last line (a kill mid-write) is cut off.
"""

from __future__ import annotations

import copy
import datetime as _dt
import errno
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.engine.evolution import Hook, SearchState
from gp_loss.run.jsonl import append, repair_torn_tail
from gp_loss.trees.best_json import BestLoss, SlotLoss, load_json, read_bytes, write_best, write_json_atomic
from gp_loss.version import __version__

RUN_FORMAT = "gp-loss-run/1"


def versions() -> dict[str, str]:
    """Versions recorded in run.json."""
    import deap
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "deap": deap.__version__,
        "gp_loss": __version__,
        "platform": platform.platform(),
    }


def migrate_run_json(data: dict[str, Any]) -> dict[str, Any]:
    """run.json as today's code writes it, from any earlier form of the same format: the one
    place that knows what older runs recorded (every reader of run.json goes through
    :meth:`RunDirectory.read_config`). Returns a new dict."""
    data = copy.deepcopy(data)
    pipeline = data.setdefault("pipeline", {})
    evolution = data.setdefault("evolution", {})
    pipeline.setdefault("lrp_protocol", "paper")  # before the shared protocol, every run used the paper's
    for key in ("max_height", "max_nodes", "constant_one"):  # once kept with the evolution settings
        if key in evolution:
            pipeline.setdefault(key, evolution.pop(key))
    evolution.setdefault("weight_mutation", 0.0)  # before slot weights, every slot weighed 1
    evolution.setdefault("slot_search", "joint")  # before slot-wise search, every run searched jointly
    evolution.setdefault("per_slot_init", False)  # before it, the initial population drew whole genomes
    # before the proxy seed was pinned, the proxy trained with the evolution's seed
    data.setdefault("task_options", {}).setdefault("seed", evolution.get("seed", 0))
    data.setdefault("cache", "off")  # before the search cache, runs had none
    info = data.get("task_info")
    if isinstance(info, dict) and "fitness_metric" not in info:
        # before a task could read another proxy metric than its target (Task.fitness_for, whose
        # tasks take a ``fitness_metric`` option), every search's fitness was its target
        from tasks import TASKS

        factory = TASKS.get(data.get("task", ""))
        metric = info.get("metric")
        if factory is not None and metric in factory.fitness_for:
            data["task_options"].setdefault("fitness_metric", metric)
    data.setdefault("tracking", {})
    return data


def recorded(where: str | os.PathLike, key: str) -> Any:
    """One entry of the run.json of the run at ``where`` (a run directory, or a file in one
    such as its best.json), as written; ``None`` where there is no readable run.json or no such
    entry (whoever reads the run itself reports a broken file)."""
    where = Path(where)
    path = (where if where.is_dir() else where.parent) / "run.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def fresh_run_path(task: str, root: str | os.PathLike = "runs") -> Path:
    """A new folder name under ``root``: ``runs/<task>-<YYYYmmdd-HHMMSS>[-n]``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{task}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{task}-{stamp}-{n}"
    return path


class RunDirectory(Hook):
    """Reads and writes one run directory; as a hook, persists every event."""

    def __init__(self, path: str | os.PathLike, task_info: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.task_info = task_info or {}
        #: a Pareto search's objectives (best.json then records its first front)
        self.objectives: tuple[str, ...] = ()
        self._events = None

    # -- files -----------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.json"

    @property
    def best_path(self) -> Path:
        return self.path / "best.json"

    # -- creation and resume ---------------------------------------------------------------
    def create(self, config: dict[str, Any]) -> None:
        """Start a new run: refuse a folder that already holds one."""
        if self.run_json.exists():
            raise GpLossError(
                f"{self.path} already holds a run; continue it (evolve --resume, or gp_loss.resume) "
                "or pick another folder (--out, or out=)"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise GpLossError(f"cannot create run directory {self.path}: {err.strerror}") from None
        record = {
            "format": RUN_FORMAT,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": sys.argv,
            "versions": versions(),
            **config,
        }
        write_json_atomic(self.run_json, record)
        self.events_path.touch()

    def read_config(self) -> dict[str, Any]:
        """run.json of an existing run."""
        if not self.run_json.is_file():
            what = "a run's events but no run.json" if self.events_path.exists() else "no run (no run.json)"
            raise GpLossError(
                f"{self.path} holds {what}; start a new run there (evolve without --resume, or "
                "gp_loss.search), or restore run.json"
            )
        data = load_json(read_bytes(self.run_json, "run.json"), str(self.run_json))
        if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise GpLossError(f"{self.run_json}: unsupported run format {found!r}")
        return migrate_run_json(data)

    def read_state(self) -> SearchState | None:
        """The saved state, or ``None`` if the run died before its first checkpoint."""
        if not self.checkpoint_path.exists():
            return None
        raw = read_bytes(self.checkpoint_path, "checkpoint")
        try:
            data = load_json(raw, str(self.checkpoint_path))
            return SearchState.from_json(data)
        except (GpLossError, TypeError, KeyError, AttributeError, ValueError) as err:
            events = self.events_path.read_bytes().count(b"\n") if self.events_path.exists() else 0
            raise GpLossError(
                f"{self.checkpoint_path} is damaged ({len(raw)} bytes; {str(err).split(': ', 1)[-1]}); "
                f"the {events} reported events in events.jsonl are intact and `show`/`report` read them, "
                "but the search state (population, random state) cannot be resumed from it"
            ) from None

    def recover_events(self, state: SearchState | None) -> list[dict[str, Any]]:
        """Make events.jsonl agree with the checkpoint and return its events.

        A torn last line is cut off; an event the checkpoint holds but the file lacks is appended.
        """
        explored = state.explored if state else 0
        raw = repair_torn_tail(self.events_path)
        events = []
        for number, line in enumerate(raw.split(b"\n"), 1):
            if line.strip():
                events.append(load_json(line, f"{self.events_path} line {number}"))
        if len(events) == explored - 1 and state is not None and state.last_event is not None:
            self._append(state.last_event)
            events.append(state.last_event)
        if len(events) != explored:
            raise GpLossError(
                f"{self.events_path} has {len(events)} events but the checkpoint counts {explored}; "
                "the run directory was changed by hand"
            )
        for i, event in enumerate(events):
            if event.get("id") != i:
                raise GpLossError(
                    f"{self.events_path}: event {i} has id {event.get('id')}; the file was edited"
                )
        return events

    # -- writing ---------------------------------------------------------------------------
    def _append(self, event: dict[str, Any]) -> None:
        append(self.events_path, event, compact=True)

    def write_checkpoint(self, state: SearchState) -> None:
        """Replace checkpoint.json atomically."""
        write_json_atomic(self.checkpoint_path, state.to_json())

    def write_best(self, state: SearchState) -> None:
        """best.json from the state's best trained candidate (nothing before there is one)."""
        if state.best is None:
            return
        slots = self.task_info.get("slots", {})
        extra: dict[str, Any] = {"id": state.best["id"], "metrics": state.best.get("metrics", {})}
        if self.objectives and state.front:
            from gp_loss.engine.pareto import SIZE

            front = sorted(state.front, key=lambda m: [-v for v in m["objectives"]])
            extra["objectives"] = list(self.objectives)
            extra["front"] = [
                {
                    "id": m["id"],
                    "trees": m["genome"],
                    "fitness": m["fitness"],
                    "rung": m["rung"],
                    "objectives": {
                        n: (-v if n == SIZE else v) for n, v in zip(self.objectives, m["objectives"])
                    },
                    "metrics": m["metrics"],
                }
                for m in front
            ]
            extra["pick"] = next(i for i, m in enumerate(front) if m["id"] == state.best["id"])
            extra["pick_rule"] = f"the best {self.objectives[0]}, then the smallest genome"
        best = BestLoss(
            task=self.task_info.get("name"),
            metric=self.task_info.get("metric"),
            fitness=state.best["fitness"],
            slots={
                slot: SlotLoss(tree, slots[slot]["adapter"], _changed_options(slots[slot]))
                for slot, tree in state.best["genome"].items()
            },
            extra=extra,
        )
        write_best(self.best_path, best)

    def on_event(self, event: dict[str, Any], state: SearchState) -> None:
        try:
            self.write_checkpoint(state)
            self._append(event)
            if event.get("new_best"):
                self.write_best(state)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise GpLossError(
                f"{self.path}: no space left on the device ({err.filename or 'writing the run'}); the run "
                f"stopped with {state.explored - 1} or {state.explored} reported events kept and a checkpoint "
                f"that resumes: free some space, then `evolve --resume --out {self.path}` "
                f"(or gp_loss.resume({str(self.path)!r}))"
            ) from None


def _changed_options(slot_info: dict[str, Any]) -> dict[str, Any]:
    """The slot's adapter options that differ from the adapter's defaults (for ``best.json``)."""
    from gp_loss.adapters import get_adapter

    return get_adapter(slot_info["adapter"], slot_info.get("adapter_options")).changed_options()
