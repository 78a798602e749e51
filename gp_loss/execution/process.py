"""The process backend: stdlib ``concurrent.futures`` with the spawn start method.

A dead worker breaks the whole pool in ``concurrent.futures``: the pool is rebuilt, the fact is
reported, and every candidate that was in flight is retried once (a second loss ends as
``failed``). ``--eval-timeout``: the pool's processes are killed (the only way to stop a stuck
evaluation), the overdue candidate ends as ``timeout``, the others are resubmitted.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
import traceback
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from gp_loss.core.events import FAILED, TIMEOUT
from gp_loss.execution.base import Backend, Finished, WorkerSpec, report
from gp_loss.execution.spawn import spawn_pool
from gp_loss.execution.worker import evaluate_genome, init_process_worker


def gpu_slots(workers: int, gpus_per_eval: float) -> list[str] | None:
    """CUDA device ids, one per worker: ``1/gpus_per_eval`` workers share each GPU."""
    if gpus_per_eval <= 0:
        return None
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        return None  # CPU-only machine: unchanged
    per_gpu = max(1, round(1 / gpus_per_eval)) if gpus_per_eval < 1 else 1
    return [str((i // per_gpu) % count) for i in range(workers)]


class ProcessBackend(Backend):
    """``workers`` spawned processes; each builds the task once and evaluates genomes."""

    def __init__(
        self, spec: WorkerSpec, workers: int, *, eval_timeout: float | None = None, gpus_per_eval: float = 0.0
    ) -> None:
        self.spec = spec
        self.spec_json = spec.to_json()
        self.workers = workers
        self.eval_timeout = eval_timeout
        self.gpus_per_eval = gpus_per_eval
        self._context = multiprocessing.get_context("spawn")
        self._jobs: dict[cf.Future, tuple[int, dict[str, str], int, float]] = {}
        self._lost: list[Finished] = []  # candidates a lost worker ended twice, not yet reported
        self._pool: cf.ProcessPoolExecutor | None = None
        self._start()

    def _start(self) -> None:
        slots = gpu_slots(self.workers, self.gpus_per_eval)
        queue = None
        if slots is not None:
            queue = self._context.Queue()
            for slot in slots:
                queue.put(slot)
        self._pool = spawn_pool(self.workers, init_process_worker, (self.spec.torch_threads, queue, slots))

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for tests and diagnostics)."""
        return [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.pid]

    def _send(self, ticket: int, job: tuple[dict[str, str], Any], attempts: int) -> None:
        try:
            future = self._pool.submit(evaluate_genome, self.spec_json, *job)
        except BrokenProcessPool:  # a worker died since the last wait: rebuild the pool first
            self._lost += self._recover_from_lost_worker()
            future = self._pool.submit(evaluate_genome, self.spec_json, *job)
        self._jobs[future] = (ticket, job, attempts, time.monotonic())

    def submit(self, ticket: int, candidate) -> None:
        self._send(ticket, (dict(candidate.genome), candidate.context.get("hurdles")), 0)

    def pending(self) -> int:
        return len(self._jobs) + len(self._lost)

    def wait(self) -> list[Finished]:
        done, self._lost = self._lost, []  # what a rebuild while submitting ended
        while not done and self._jobs:
            finished, _ = cf.wait(list(self._jobs), timeout=0.25, return_when=cf.FIRST_COMPLETED)
            broken = False
            for future in finished:
                ticket, _job, _attempts, _ = self._jobs[future]
                try:
                    done.append(Finished(ticket, future.result()))
                    del self._jobs[future]
                except BrokenProcessPool:
                    broken = True
                except Exception as err:  # the evaluation itself raised
                    del self._jobs[future]
                    report(f"evaluation {ticket} failed: {err!r}")
                    done.append(Finished(ticket, None, FAILED, traceback.format_exc(limit=3)))
            if broken:
                done += self._recover_from_lost_worker()
            elif self.eval_timeout:
                done += self._enforce_timeout()
        return done

    def _recover_from_lost_worker(self) -> list[Finished]:
        lost = list(self._jobs.values())
        self._jobs.clear()
        self._kill_pool()
        report(f"a worker process died; {len(lost)} evaluation(s) in flight are retried once")
        self._start()
        failed = []
        for ticket, job, attempts, _ in lost:
            if attempts >= 1:
                failed.append(Finished(ticket, None, FAILED, "worker lost twice"))
            else:
                self._send(ticket, job, attempts + 1)
        return failed

    def _enforce_timeout(self) -> list[Finished]:
        now = time.monotonic()
        overdue = [job for job in self._jobs.values() if now - job[3] > self.eval_timeout]
        if not overdue:
            return []
        others = [job for job in self._jobs.values() if now - job[3] <= self.eval_timeout]
        self._jobs.clear()
        self._kill_pool()
        self._start()
        for ticket, job, attempts, _ in others:
            self._send(ticket, job, attempts)  # not their fault: same attempt count
        for ticket, *_ in overdue:
            report(f"evaluation {ticket} ran past --eval-timeout {self.eval_timeout:g}s: outcome timeout")
        return [Finished(job[0], None, TIMEOUT, f"over {self.eval_timeout:g}s") for job in overdue]

    def map(self, fn, items) -> list[Any]:
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
