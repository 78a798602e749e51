"""The one way gp-loss starts worker processes: a spawn-context ``ProcessPoolExecutor`` whose
workers exit on their own once their driver is gone.

A driver killed with SIGKILL or by the OOM killer runs no cleanup, and ``concurrent.futures``
workers blocked on their call queue would then live on, re-parented to init, each holding a
task's data and model (about 800 MB on the vision tasks). Every worker started here runs a
daemon thread that checks its parent once a second and ends the process when the parent has
changed. Spawn, not fork: torch and CUDA state do not survive a fork.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

#: seconds between a worker's checks that its driver is alive
WATCH_INTERVAL = 1.0


def spawn_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes that exit when this process dies; each runs
    ``initializer(*initargs)`` first, as ``ProcessPoolExecutor``'s own argument would."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )


def _start_worker(driver: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    watch_driver(driver)
    if initializer is not None:
        initializer(*initargs)


def watch_driver(driver: int, interval: float = WATCH_INTERVAL) -> threading.Thread:
    """Start a daemon thread that ends this process (exit status 3) once its parent is no longer
    ``driver``: the driver died and the process was re-parented."""

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(interval)
        os._exit(3)

    thread = threading.Thread(target=watch, name="gp-loss-driver-watch", daemon=True)
    thread.start()
    return thread
