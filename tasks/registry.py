"""The task registry: a small dict filled by a decorator that refuses duplicate names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gp_loss.errors import GpLossError

TASKS: dict[str, type] = {}


def register_task(name: str) -> Callable[[type], type]:
    """Class decorator registering a :class:`tasks.base.Task` subclass under ``name``, which also
    becomes its ``name`` attribute (the engine reads its declared attributes, such as
    ``default_budget``, before building it)."""
    from tasks.base import Task

    def wrap(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"register_task({name!r}) decorates a Task subclass, not {cls!r}")
        if name in TASKS and TASKS[name] is not cls:
            raise ValueError(f"task {name!r} registered twice")
        declared = cls.__dict__.get("name")
        if declared and declared != name:
            raise ValueError(f"task class {cls.__name__} says name = {declared!r} but registers as {name!r}")
        cls.name = name  # the decorator states the name; the class need not repeat it
        TASKS[name] = cls
        return cls

    return wrap


def get_task(name: str, **options: Any):
    """Build the task ``name`` with its options; the error lists the known tasks."""
    if name not in TASKS:
        known = ", ".join(sorted(TASKS)) or "(none registered)"
        raise GpLossError(f"unknown task {name!r}; known: {known}")
    return TASKS[name](**options)
