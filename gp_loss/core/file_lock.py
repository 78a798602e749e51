"""An exclusive ``flock`` on a sidecar file, for work that parallel processes must do one at a
time: generating a built-in dataset, training a proxy trunk, opening the search cache.

The kernel drops the lock with its holder, however it dies (SIGKILL included), so a killed
process never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(lock: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (created, with its folder, if missing)."""
    path = Path(lock)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
