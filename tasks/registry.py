"""The task registry: a small dict filled by a decorator that refuses duplicate names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gp_loss.errors import GpLossError

TASKS: dict[str, Callable[..., Any]] = {}


def register_task(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Class decorator registering a task factory under ``name``."""

    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in TASKS:
            raise ValueError(f"task {name!r} registered twice")
        TASKS[name] = factory
        return factory

    return wrap


def get_task(name: str, **options: Any):
    """Build the task ``name`` with its options; the error lists the known tasks."""
    if name not in TASKS:
        known = ", ".join(sorted(TASKS)) or "(none registered)"
        raise GpLossError(f"unknown task {name!r}; known: {known}")
    return TASKS[name](**options)
