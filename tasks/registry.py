"""The task registry (a :class:`primitives.registry.Registry`), filled by a decorator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gp_loss.core.errors import GpLossError
from primitives.registry import Registry

TASKS: Registry[type] = Registry("task", GpLossError)


def register_task(name: str) -> Callable[[type], type]:
    """Class decorator registering a :class:`tasks.base.Task` subclass under ``name``, which also
    becomes its ``name`` attribute (the engine reads its declared attributes, such as
    ``default_budget``, before building it)."""
    from tasks.base import Task

    def wrap(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"register_task({name!r}) decorates a Task subclass, not {cls!r}")
        declared = cls.__dict__.get("name")
        if declared and declared != name:
            raise ValueError(f"task class {cls.__name__} says name = {declared!r} but registers as {name!r}")
        TASKS.register(name, cls)
        cls.name = name  # the decorator states the name; the class need not repeat it
        return cls

    return wrap


def get_task(name: str, **options: Any):
    """Build the task ``name`` with its options; the error lists the known tasks."""
    return TASKS.lookup(name)(**options)
