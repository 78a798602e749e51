"""The JSON form of a Markdown bench report (``bench ... --json``).

The benches print Markdown for docs/BENCHMARKS.md. ``--json`` gives research scripts the same
content as data: the lines outside tables as ``notes`` and every table as a list of row objects
keyed by its header, with numbers as numbers (``12.5``, ``3.1x`` -> 3.1, ``45%`` -> 45) and
``mean +- std`` cells as ``{"mean", "std"}``.
"""

from __future__ import annotations

import re
from typing import Any

_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_MEAN_STD = re.compile(r"^(\S+) \+- (\S+)$")


def cell_value(text: str) -> Any:
    """A cell as data: a number where it reads as one, ``{"mean", "std"}``, else the text."""
    text = text.strip().strip("`")
    pair = _MEAN_STD.match(text)
    if pair and all(_NUMBER.match(part) for part in pair.groups()):
        return {"mean": float(pair.group(1)), "std": float(pair.group(2))}
    bare = text.rstrip("x%s").strip() if text and text[-1] in "x%s" else text
    if _NUMBER.match(bare):
        value = float(bare)
        return int(value) if value.is_integer() and "." not in bare and "e" not in bare.lower() else value
    return text


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown_json(text: str) -> dict[str, Any]:
    """``{"notes": [...], "tables": [{"columns": [...], "rows": [{column: value}]}]}``."""
    notes: list[str] = []
    tables: list[dict[str, Any]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        is_header = (
            line.lstrip().startswith("|") and i + 1 < len(lines) and set(lines[i + 1].strip()) <= set("|-: ")
        )
        if is_header:
            columns = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                values = [cell_value(c) for c in _cells(lines[i])]
                rows.append(dict(zip(columns, values)))
                i += 1
            tables.append({"after": notes[-1] if notes else "", "columns": columns, "rows": rows})
            continue
        if line.strip():
            notes.append(line.strip())
        i += 1
    return {"notes": notes, "tables": tables}
