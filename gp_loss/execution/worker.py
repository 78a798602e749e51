"""Worker side: build the evaluator once per process, evaluate genomes, return plain dicts."""

from __future__ import annotations

import importlib
import json
import os
import time
from typing import Any

import torch

_EVALUATORS: dict[str, Any] = {}


def _evaluator(spec_json: str):
    if spec_json not in _EVALUATORS:
        from gp_loss.core.settings import PipelineOptions
        from gp_loss.fitness.pipeline import FitnessPipeline
        from tasks import get_task

        spec = json.loads(spec_json)
        for module in spec.get("imports", ["tasks"]):
            importlib.import_module(module)
        if spec.get("task_pickle"):
            import base64
            import pickle

            task = pickle.loads(base64.b64decode(spec["task_pickle"]))  # our own driver's object
        else:
            task = get_task(spec["task"], **spec.get("task_options", {}))
        _EVALUATORS[spec_json] = FitnessPipeline(task, PipelineOptions.from_json(spec.get("pipeline", {})))
    return _EVALUATORS[spec_json]


def evaluate_genome(
    spec_json: str, genome: dict[str, str], hurdles: list[float | None] | None = None
) -> dict[str, Any]:
    """LRP + proxy training of one genome in this worker (``hurdles``: the proxy rungs' hurdles
    the driver set); the Evaluation as a JSON dict."""
    from gp_loss.fitness.candidate import Candidate

    torch.set_num_threads(max(1, json.loads(spec_json).get("torch_threads", 1)))
    start = time.perf_counter()
    result = _evaluator(spec_json).remote(Candidate(dict(genome), context={"hurdles": hurdles}))
    data = result.to_json()
    data["worker"] = {
        "pid": os.getpid(),
        "seconds": time.perf_counter() - start,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    return data


def init_process_worker(threads: int, gpu_queue, slots: list[str] | None = None) -> None:
    """``ProcessPoolExecutor`` initializer: pin torch threads, claim this worker's GPU (if any).

    Each worker takes a slot from ``gpu_queue``. A worker that finds none left (a replacement
    for a lost one) says so on stderr and shares the GPU its process id picks from ``slots``.
    """
    import queue as queue_module

    torch.set_num_threads(max(1, threads))
    if gpu_queue is not None:
        try:
            device = gpu_queue.get(timeout=5)
        except queue_module.Empty:
            device = (slots or ["0"])[os.getpid() % len(slots or ["0"])]
            from gp_loss.execution.base import report

            report(f"worker {os.getpid()}: every GPU slot is taken; it shares GPU {device}")
        os.environ["CUDA_VISIBLE_DEVICES"] = str(device)
