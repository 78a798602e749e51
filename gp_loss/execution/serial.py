"""The serial backend: evaluations run in the driver, one at a time."""

from __future__ import annotations

import signal
import threading
import traceback
from collections.abc import Callable

from gp_loss.core.events import FAILED, TIMEOUT
from gp_loss.execution.base import Backend, Finished, report


class _Overdue(Exception):
    pass


def _alarm(signum, frame):  # pragma: no cover - runs from a signal
    raise _Overdue


class SerialBackend(Backend):
    """Runs ``evaluate(candidate)`` at submit time; ``--eval-timeout`` uses SIGALRM."""

    workers = 1

    def __init__(self, evaluate: Callable, eval_timeout: float | None = None) -> None:
        self.evaluate = evaluate
        self.eval_timeout = eval_timeout
        self._done: list[Finished] = []

    def submit(self, ticket: int, candidate) -> None:
        timed = self.eval_timeout and threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGALRM, _alarm) if timed else None
        try:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, self.eval_timeout)
            result = self.evaluate(candidate)  # stays in this process: no JSON round trip
            self._done.append(Finished(ticket, result))
        except _Overdue:
            report(f"evaluation {ticket} ran past --eval-timeout {self.eval_timeout:g}s: outcome timeout")
            self._done.append(Finished(ticket, None, TIMEOUT, f"over {self.eval_timeout:g}s"))
        except Exception as err:  # a bug in a task or loss: record it, keep searching
            report(f"evaluation {ticket} failed: {err!r}")
            self._done.append(Finished(ticket, None, FAILED, traceback.format_exc(limit=3)))
        finally:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

    def wait(self) -> list[Finished]:
        done, self._done = self._done, []
        return done

    def pending(self) -> int:
        return len(self._done)
