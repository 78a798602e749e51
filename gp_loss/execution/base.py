"""The execution interface every backend implements (``gp_loss.execution.backends`` names them)."""

from __future__ import annotations

import abc
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from gp_loss.fitness.candidate import Evaluation


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to build its evaluator (sent once per job, as JSON).

    Attributes:
        task: registered task name.
        task_options: keyword arguments of ``get_task`` (seed and device included).
        pipeline: :class:`PipelineOptions` as a dict.
        imports: modules to import first (they register the task).
        torch_threads: torch threads per worker.
        task_pickle: the task object pickled (base64), for tasks not rebuilt by name.
    """

    task: str
    task_options: dict[str, Any] = field(default_factory=dict)
    pipeline: dict[str, Any] = field(default_factory=dict)
    imports: tuple[str, ...] = ("tasks",)
    torch_threads: int = 1
    task_pickle: str = ""

    def to_json(self) -> str:
        """Canonical JSON (also the worker-side cache key)."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Finished:
    """A finished job: its ticket and either its Evaluation or an error outcome.

    ``result`` is the Evaluation itself where it was computed in this process (serial), and its
    JSON form where it crossed a process boundary (process and Ray workers): an evaluation is
    serialised only where it has to be. ``outcome`` is ``None`` on success, else ``timeout`` or
    ``failed`` with ``detail``.
    """

    ticket: int
    result: Evaluation | dict[str, Any] | None = None
    outcome: str | None = None
    detail: str = ""


def report(message: str) -> None:
    """Tell the user about a fault the run survives (one line on stderr)."""
    print(f"gp-loss: {message}", file=sys.stderr, flush=True)


class Backend(abc.ABC):
    """Keeps up to ``workers`` evaluations in flight."""

    workers: int = 1

    @abc.abstractmethod
    def submit(self, ticket: int, candidate) -> None:
        """Start evaluating ``candidate`` (a :class:`Candidate`); ``ticket`` identifies it."""

    @abc.abstractmethod
    def wait(self) -> list[Finished]:
        """Block until at least one submitted job finished; return every finished one."""

    @abc.abstractmethod
    def pending(self) -> int:
        """Jobs submitted and not yet returned by :meth:`wait`."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """Apply a picklable ``fn`` to every item, in parallel where the backend can."""
        return list(map(fn, items))

    def close(self) -> None:  # noqa: B027  (optional hook: nothing to release by default)
        """Release workers."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_threads(workers: int) -> int:
    """torch threads per worker so that workers do not oversubscribe the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))
