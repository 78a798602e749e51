"""Append-only JSONL files (events.jsonl, the retraining logs): the one writer (one fsynced line
per record) and the one place that handles the torn last line a process killed mid-write
leaves: cut off before the next append, left out by read-only readers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def complete_lines(raw: bytes) -> bytes:
    """``raw`` up to its last newline: a torn last line (a kill mid-write) is dropped."""
    return raw if not raw or raw.endswith(b"\n") else raw[: raw.rfind(b"\n") + 1]


def repair_torn_tail(path: Path) -> bytes:
    """The complete lines of the file at ``path`` (empty when there is none); a torn last line
    is cut off the file itself, so that the next append starts on a line of its own."""
    raw = path.read_bytes() if path.exists() else b""
    complete = complete_lines(raw)
    if len(complete) != len(raw):
        with open(path, "r+b") as handle:
            handle.truncate(len(complete))
    return complete


def append(path: Path, record: Any, compact: bool = False) -> None:
    """Append ``record`` as one JSON line, durable (fsynced) before this returns."""
    separators = (",", ":") if compact else None
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, separators=separators) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
