"""The cache folder where built-in datasets are generated once, then reused."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from gp_loss.core.file_lock import exclusive


def cache_root() -> Path:
    """``$GP_LOSS_CACHE`` or ``~/.cache/gp-loss``."""
    return Path(os.environ.get("GP_LOSS_CACHE", Path.home() / ".cache" / "gp-loss"))


def generated(name: str, write: Callable[[Path], object]) -> Path:
    """``cache_root() / name``, written by ``write(folder)`` on first use.

    A ``.complete`` marker is written last, so an interrupted generation is redone on the next
    call instead of being half-used (the writers publish atomically as well). Processes that
    need the same missing dataset at once (parallel test workers, search workers) generate it
    once: the others wait on ``NAME.lock``.
    """
    root = cache_root() / name
    marker = root / ".complete"
    if marker.exists():
        return root
    with exclusive(root.with_name(name + ".lock")):
        if not marker.exists():
            write(root)
            marker.write_text("ok\n")
    return root


def builtin(name: str, counts: Mapping[str, int], write: Callable[[Path, Mapping[str, int]], object]) -> Path:
    """A built-in dataset ``name`` with ``counts`` images per split, generated on first use: its
    folder is named after both, so that other counts make another one."""
    sizes = "-".join(str(counts.get(split, 0)) for split in ("train", "val", "test"))
    return generated(f"{name}_{sizes}", lambda root: write(root, counts))
