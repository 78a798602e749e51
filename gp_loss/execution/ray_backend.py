"""The Ray backend (``pip install -e ".[ray]"``): evaluations as Ray tasks.

``address="auto"`` joins a running cluster; otherwise a local instance starts. Each evaluation
asks for one CPU and ``gpus_per_eval`` GPUs (a fraction packs several on one GPU; Ray sets
``CUDA_VISIBLE_DEVICES`` so each sees only its GPU). A worker or node lost mid-evaluation is
retried by Ray (``max_retries=1``); a second loss ends as ``failed``. Overdue evaluations are
cancelled (``--eval-timeout``) and end as ``timeout``.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.events import FAILED, TIMEOUT
from gp_loss.execution.base import Backend, Finished, WorkerSpec, report
from gp_loss.execution.worker import evaluate_genome


def _import_ray():
    try:
        import ray
    except ImportError:
        raise GpLossError('the ray backend needs Ray: pip install -e ".[ray]"') from None
    return ray


class RayBackend(Backend):
    """Up to ``workers`` Ray tasks in flight."""

    def __init__(
        self,
        spec: WorkerSpec,
        workers: int,
        *,
        address: str | None = None,
        eval_timeout: float | None = None,
        gpus_per_eval: float | None = None,
        num_cpus: int | None = None,
    ) -> None:
        ray = self._ray = _import_ray()
        self.workers = workers
        self.eval_timeout = eval_timeout
        self.spec_json = spec.to_json()
        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=num_cpus or workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": {"PYTHONPATH": _pythonpath()}},
                )
        if gpus_per_eval is None:  # one GPU per evaluation where the cluster has GPUs
            gpus_per_eval = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        self._remote = ray.remote(evaluate_genome).options(
            num_cpus=1, num_gpus=gpus_per_eval, max_retries=1, retry_exceptions=False
        )
        self._jobs: dict[Any, tuple[int, float]] = {}

    def submit(self, ticket: int, candidate) -> None:
        ref = self._remote.remote(self.spec_json, dict(candidate.genome), candidate.context.get("hurdles"))
        self._jobs[ref] = (ticket, time.monotonic())

    def pending(self) -> int:
        return len(self._jobs)

    def wait(self) -> list[Finished]:
        ray = self._ray
        done: list[Finished] = []
        while not done and self._jobs:
            ready, _ = ray.wait(list(self._jobs), num_returns=1, timeout=0.25)
            for ref in ready:
                ticket, _ = self._jobs.pop(ref)
                try:
                    done.append(Finished(ticket, ray.get(ref)))
                except (
                    ray.exceptions.WorkerCrashedError,
                    ray.exceptions.NodeDiedError,
                    ray.exceptions.ObjectLostError,
                ) as err:
                    report(f"evaluation {ticket}: worker lost twice ({type(err).__name__}): outcome failed")
                    done.append(Finished(ticket, None, FAILED, type(err).__name__))
                except ray.exceptions.TaskCancelledError:
                    done.append(Finished(ticket, None, TIMEOUT, "cancelled"))
                except Exception as err:
                    report(f"evaluation {ticket} failed: {err!r}"[:300])
                    done.append(Finished(ticket, None, FAILED, traceback.format_exc(limit=3)))
            if self.eval_timeout:
                now = time.monotonic()
                for ref, (ticket, started) in list(self._jobs.items()):
                    if now - started > self.eval_timeout:
                        ray.cancel(ref, force=True)
                        del self._jobs[ref]
                        report(
                            f"evaluation {ticket} ran past --eval-timeout {self.eval_timeout:g}s: outcome timeout"
                        )
                        done.append(Finished(ticket, None, TIMEOUT, f"over {self.eval_timeout:g}s"))
        return done

    def map(self, fn, items) -> list[Any]:
        ray = self._ray
        remote = ray.remote(fn).options(num_cpus=1, max_retries=1)
        return ray.get([remote.remote(item) for item in items])

    def close(self) -> None:
        for ref in list(self._jobs):
            self._ray.cancel(ref, force=True)
        self._jobs.clear()


def _pythonpath() -> str:
    """Make the checkout importable in Ray workers even without ``pip install -e .``."""
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    return os.pathsep.join([root, existing] if existing else [root])
