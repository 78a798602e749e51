"""Append-only JSONL files (events.jsonl, the retraining logs): a process killed mid-write
leaves a torn last line, and this is the one place that cuts it off."""

from __future__ import annotations

from pathlib import Path


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
