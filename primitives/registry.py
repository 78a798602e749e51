"""The one registry class: primitives, adapters, tasks, tree baselines and execution backends
are each a :class:`Registry`, with the same rules: a name registers one thing (registering it
again is a no-op, another thing under it is refused), and an unknown name is an error that
lists the known ones. It lives in the lowest layer so that the operators can use it too."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Registry(dict[str, T]):
    """A dict of named things, filled by :meth:`register` and read by :meth:`lookup` (plain
    dict reads work too: ``name in registry``, ``registry.items()``).

    Args:
        kind: what it holds, for messages (``"task"``, ``"adapter"``...).
        unknown: the exception type :meth:`lookup` raises for a name it does not hold (the
            engine's one-line ``GpLossError`` where a user typed the name).
    """

    def __init__(self, kind: str, unknown: Callable[[str], Exception] = KeyError) -> None:
        super().__init__()
        self.kind = kind
        self.unknown = unknown

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under ``name``; the same item again is a no-op (a module imported twice),
        another one is refused."""
        if not name:
            raise ValueError(f"a {self.kind} needs a name")
        if name in self and self[name] is not item:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self[name] = item
        return item

    def lookup(self, name: str) -> T:
        """The item registered as ``name``; the error lists the known names."""
        if name not in self:
            known = ", ".join(sorted(self)) or "(none registered)"
            raise self.unknown(f"unknown {self.kind} {name!r}; known: {known}")
        return self[name]
