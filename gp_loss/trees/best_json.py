"""``best.json``, the exchange format of found losses (docs/architecture.md section 6).

Reading validates everything and parses trees against the primitive set: a file from anywhere
is safe to load (nothing is unpickled or evaluated).
"""

from __future__ import annotations

import json
import keyword
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gp_loss.adapters import ADAPTERS, get_adapter
from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.parse import parse_tree, split_weight
from gp_loss.trees.space import WEIGHTS

FORMAT = "gp-loss/1"
#: Slot names become Python names in exported code: short identifiers, not keywords or methods.
_SLOT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_RESERVED = frozenset({"forward", "extra_repr", "build_losses", "training"})
#: Exchange and run files larger than this are refused unread (a best.json is a few kB).
MAX_FILE_BYTES = 64 * 2**20


def load_json(text: str | bytes, source: str) -> Any:
    """Decode JSON from anywhere: malformed, non-UTF-8, nested past Python's recursion limit,
    or holding numbers past its integer limit, each is a one-line :class:`GpLossError`."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as err:
        raise GpLossError(f"{source}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise GpLossError(f"{source}: malformed JSON ({err.msg} at line {err.lineno})") from None
    except RecursionError:
        raise GpLossError(f"{source}: JSON nested too deeply to read") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise GpLossError(f"{source}: unreadable JSON ({str(err).splitlines()[0]})") from None


def read_bytes(path: Path, what: str = "file") -> bytes:
    """A file's bytes, refusing one larger than :data:`MAX_FILE_BYTES`; one-line errors."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise GpLossError(
                f"{path}: {size / 2**20:.0f} MB is too large for a {what} (at most {MAX_FILE_BYTES // 2**20} MB)"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise GpLossError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise GpLossError(f"{path} is a folder, not a {what}") from None
    except OSError as err:
        raise GpLossError(f"cannot read {path}: {err.strerror}") from None


@dataclass(frozen=True)
class SlotLoss:
    """One slot of a found loss: its tree string, the adapter that feeds it and the adapter's
    options that differ from its defaults (``{"ignore_index": 0}``; files written before
    options existed have none and read as the defaults)."""

    tree: str
    adapter: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def signature(self) -> SlotSignature:
        """The most permissive signature for this adapter (pooling and ``one`` allowed)."""
        return SlotSignature(self.adapter, spatial=True, constant_one=True)

    @property
    def weight(self) -> str:
        """The slot loss's weight (``1``, ``C`` or ``10``: the tree string's prefix)."""
        return split_weight(self.tree)[0]

    def to_json(self) -> dict[str, Any]:
        """The slot's entry in ``best.json`` (``weight`` repeats the tree's prefix, for readers
        that do not parse trees; files without it are weight 1)."""
        entry: dict[str, Any] = {"tree": self.tree, "adapter": self.adapter}
        if self.weight != "1":
            entry["weight"] = self.weight
        if self.options:
            entry["adapter_options"] = dict(self.options)
        return entry


@dataclass
class BestLoss:
    """Contents of a ``best.json``: the task, its metric, the fitness and one tree per slot."""

    task: str | None
    metric: str | None
    fitness: float | None
    slots: dict[str, SlotLoss]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``best.json``."""
        return {
            "format": FORMAT,
            "task": self.task,
            "metric": self.metric,
            "fitness": self.fitness,
            "slots": {name: s.to_json() for name, s in self.slots.items()},
            **self.extra,
        }


def parse_best(data: Any, source: str = "best.json") -> BestLoss:
    """Validate a decoded ``best.json`` object; every problem is a one-line :class:`GpLossError`."""
    if not isinstance(data, dict):
        raise GpLossError(f"{source}: expected a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise GpLossError(f"{source}: unsupported format {fmt!r}; this version reads {FORMAT!r}")
    slots = data.get("slots")
    if not isinstance(slots, dict) or not slots:
        raise GpLossError(f"{source}: 'slots' must be a non-empty object of slot name -> {{tree, adapter}}")
    parsed: dict[str, SlotLoss] = {}
    for name, entry in slots.items():
        if (
            not isinstance(name, str)
            or not _SLOT_NAME.fullmatch(name)
            or keyword.iskeyword(name)
            or name in _RESERVED
        ):
            raise GpLossError(
                f"{source}: slot name {name[:40]!r} must be a short identifier (letters, digits, '_'), not a keyword"
            )
        if not isinstance(entry, dict) or not isinstance(entry.get("tree"), str):
            raise GpLossError(f"{source}: slot {name!r} needs a string 'tree'")
        adapter = entry.get("adapter")
        if adapter not in ADAPTERS:
            known = ", ".join(sorted(ADAPTERS))
            raise GpLossError(
                f"{source}: slot {name!r} has unknown adapter {adapter!r}; known: {known}. If it is your "
                "own, import the module that registers it first (--import MODULE, or import it before "
                "load_loss)"
            )
        options = entry.get("adapter_options", {})
        if not isinstance(options, dict):
            raise GpLossError(f"{source}: slot {name!r}: 'adapter_options' must be an object")
        slot = SlotLoss(entry["tree"], adapter, dict(options))
        try:
            get_adapter(adapter, options)
            parse_tree(slot.tree, slot.signature)
            slot = _with_weight(slot, entry.get("weight"))
        except GpLossError as err:
            raise GpLossError(f"{source}: slot {name!r}: {err}") from None
        parsed[name] = slot
    fitness = data.get("fitness")
    if fitness is not None and (
        not isinstance(fitness, (int, float)) or isinstance(fitness, bool) or not math.isfinite(fitness)
    ):
        raise GpLossError(f"{source}: 'fitness' must be a finite number or null")
    known_keys = {"format", "task", "metric", "fitness", "slots"}
    return BestLoss(
        task=data.get("task"),
        metric=data.get("metric"),
        fitness=None if fitness is None else float(fitness),
        slots=parsed,
        extra={k: v for k, v in data.items() if k not in known_keys},
    )


def _with_weight(slot: SlotLoss, weight: Any) -> SlotLoss:
    """A slot entry's ``weight`` applied to its tree (a hand-written file may give it apart
    from the tree); one that contradicts the tree's prefix is an error."""
    if weight is None or str(weight) == slot.weight:
        return slot
    if slot.weight != "1" or str(weight) not in WEIGHTS:
        raise GpLossError(
            f"'weight' {weight!r} does not match the tree's weight {slot.weight!r} (one of {', '.join(WEIGHTS)})"
        )
    return SlotLoss(f"{weight} * {slot.tree}", slot.adapter, slot.options)


def pick(best: BestLoss, index: int | None) -> BestLoss:
    """Member ``index`` of a Pareto search's first front (``None``: the file's own slots, its
    default pick); a one-line error for a file without a front or an index outside it."""
    if index is None:
        return best
    front = best.extra.get("front")
    if not isinstance(front, list) or not front:
        raise GpLossError("this best.json holds no Pareto front (--pick needs an `evolve --objectives` run)")
    if not 0 <= index < len(front):
        raise GpLossError(f"--pick {index}: the front has members 0..{len(front) - 1}")
    member = front[index]
    trees = member.get("trees") if isinstance(member, dict) else None
    if not isinstance(trees, dict) or set(trees) != set(best.slots):
        raise GpLossError(f"front member {index} does not name a tree for every slot {sorted(best.slots)}")
    slots = {}
    for name, entry in best.slots.items():
        slot = SlotLoss(str(trees[name]), entry.adapter, entry.options)
        try:
            parse_tree(slot.tree, slot.signature)
        except GpLossError as err:
            raise GpLossError(f"front member {index}, slot {name!r}: {err}") from None
        slots[name] = slot
    extra = {**best.extra, "id": member.get("id"), "metrics": member.get("metrics", {}), "pick": index}
    fitness = member.get("fitness")
    return BestLoss(
        best.task, best.metric, fitness if isinstance(fitness, (int, float)) else None, slots, extra
    )


def read_best(path: str | os.PathLike, pick_index: int | None = None) -> BestLoss:
    """Read and validate a ``best.json`` file (``pick_index``: a front member, see :func:`pick`)."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.json"
    data = load_json(read_bytes(path, "best.json"), str(path))
    return pick(parse_best(data, str(path)), pick_index)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON so that a kill at any moment leaves either the old or the new file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves the old file and no half-written copy
        raise
    os.replace(tmp, path)


def write_best(path: str | os.PathLike, best: BestLoss) -> None:
    """Write a ``best.json`` atomically."""
    write_json_atomic(path, best.to_json())
