"""Execution backends: where the expensive part of an evaluation (LRP, proxy training) runs.

One interface (:class:`Backend`: ``submit``, ``wait``, ``map``), three backends: ``serial``
(in process), ``process`` (stdlib ``concurrent.futures`` with spawn) and ``ray`` (optional
extra). The driver keeps the caches and the population; workers get a genome and return a
plain JSON dict, never an individual.
"""

from __future__ import annotations

from gp_loss.execution.backends import make_backend
from gp_loss.execution.base import Backend, Finished, WorkerSpec

__all__ = ["Backend", "Finished", "WorkerSpec", "make_backend"]
