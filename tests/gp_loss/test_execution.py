"""Execution backends: serial = process with one worker, parallel runs, lost workers, timeouts,
GPU placement, Ray (a local instance on 2 CPUs), DEAP's map on the backends."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from gp_loss.core.baselines import get_baseline
from gp_loss.core.settings import EvolutionConfig, ExecutionOptions
from gp_loss.engine.evolution import Limits
from gp_loss.execution.backends import make_backend
from gp_loss.execution.base import WorkerSpec
from gp_loss.execution.process import ProcessBackend, gpu_slots
from gp_loss.fitness.candidate import Candidate
from gp_loss.run.runner import RunSettings, start

GOOD = {"cls": get_baseline("cross_entropy").tree, "reg": get_baseline("giou").tree}
TOY = ("gp_loss.testing.tasks",)


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def _stable(events):
    return [{k: v for k, v in e.items() if k not in ("seconds", "time", "worker")} for e in events]


def _digits(n: int, **execution) -> RunSettings:
    return RunSettings(
        "cls_digits",
        {"steps": 60},
        evolution=EvolutionConfig(population_size=4, seed=2),
        limits=Limits(max_explored=n),
        torch_threads=1,
        execution=ExecutionOptions(**execution),
    )


def _run(settings: RunSettings, out: Path):
    with start(settings, out, progress=False) as search:
        return search.run()


def _wait_for_pid(folder: Path, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(folder.iterdir())
        if files:
            return int(files[0].read_text())
        time.sleep(0.05)
    raise AssertionError("no evaluation started")


def test_serial_and_process_give_identical_runs_with_one_worker(tmp_path):
    _run(_digits(150), tmp_path / "serial")
    _run(_digits(150, backend="process"), tmp_path / "process")
    assert _stable(_events(tmp_path / "serial")) == _stable(_events(tmp_path / "process"))


def test_process_backend_keeps_two_in_flight(tmp_path):
    run = tmp_path / "two"
    state = _run(_digits(250, backend="process", workers=2), run)
    events = _events(run)
    assert [e["id"] for e in events] == list(range(250)) and state.explored == 250
    pids = {e["worker"]["pid"] for e in events if e.get("worker")}
    assert len(pids) == 2, "both workers evaluated candidates"
    assert state.trained > 0


def _slow_toy(tmp_path: Path) -> tuple[WorkerSpec, Path]:
    """A worker spec whose evaluations take 2 s and leave their process id in the returned folder."""
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    return WorkerSpec("two_slot_toy", {"sleep": 2.0, "pid_dir": str(pid_dir)}, {}, ("tasks", *TOY)), pid_dir


@pytest.mark.slow
def test_lost_process_worker_is_reported_and_retried(tmp_path, capfd):
    spec, pid_dir = _slow_toy(tmp_path)
    with ProcessBackend(spec, 1) as backend:
        backend.submit(7, Candidate(dict(GOOD)))
        os.kill(_wait_for_pid(pid_dir), signal.SIGKILL)
        finished = backend.wait()
    assert [f.ticket for f in finished] == [7]
    assert finished[0].result is not None and finished[0].result["outcome"] == "trained"
    assert len(list(pid_dir.iterdir())) == 2  # the retry ran in a fresh worker
    assert "a worker process died" in capfd.readouterr().err


@pytest.mark.slow
def test_a_submit_after_a_worker_died_rebuilds_the_pool(tmp_path, capfd):
    """Found by ``bench soak``: a worker killed between two waits broke the pool, and the next
    submit raised BrokenProcessPool out of the search."""
    spec, pid_dir = _slow_toy(tmp_path)
    with ProcessBackend(spec, 1) as backend:
        backend.submit(7, Candidate(dict(GOOD)))
        os.kill(_wait_for_pid(pid_dir), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not getattr(backend._pool, "_broken", False) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the pool has noticed: the case of the soak
        assert backend._pool._broken
        backend.submit(8, Candidate(dict(GOOD)))  # raised before
        finished = []
        while backend.pending():
            finished += backend.wait()
    assert sorted(f.ticket for f in finished) == [7, 8]
    assert all(f.result is not None and f.result["outcome"] == "trained" for f in finished)
    assert "a worker process died" in capfd.readouterr().err


def test_eval_timeout_gives_timeout_and_the_run_goes_on(tmp_path):
    settings = RunSettings(
        "two_slot_toy",
        {"sleep": 30.0},
        evolution=EvolutionConfig(population_size=2, seed=1),
        limits=Limits(max_explored=60),
        imports=TOY,
        execution=ExecutionOptions(backend="process", workers=2, eval_timeout=1.0),
    )
    started = time.monotonic()
    state = _run(settings, tmp_path / "run")
    assert time.monotonic() - started < 90
    assert state.explored == 60 and state.counts["timeout"] >= 1
    timeouts = [e for e in _events(tmp_path / "run") if e["outcome"] == "timeout"]
    assert all(e["fitness"] == 0.0 and not e["entered"] for e in timeouts)


def test_serial_backend_timeout(capfd):
    from gp_loss.fitness.pipeline import FitnessPipeline
    from gp_loss.testing.tasks import TwoSlotToy

    pipeline = FitnessPipeline(TwoSlotToy(sleep=30.0))
    backend = make_backend(
        "serial", WorkerSpec("two_slot_toy"), local_evaluate=pipeline.remote, eval_timeout=0.5
    )
    started = time.monotonic()
    backend.submit(3, Candidate(dict(GOOD)))
    (finished,) = backend.wait()
    assert time.monotonic() - started < 10
    assert (finished.ticket, finished.outcome) == (3, "timeout")
    assert "ran past --eval-timeout" in capfd.readouterr().err


def test_gpu_placement(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert gpu_slots(4, 1.0) == ["0", "1", "0", "1"]
    assert gpu_slots(8, 0.25) == ["0", "0", "0", "0", "1", "1", "1", "1"]
    assert gpu_slots(4, 0.0) is None
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert gpu_slots(4, 0.5) is None  # CPU-only machines work unchanged


def test_backend_errors():
    from gp_loss.core.errors import GpLossError

    spec = WorkerSpec("cls_digits")
    with pytest.raises(GpLossError, match="unknown backend"):
        make_backend("mpi", spec)
    with pytest.raises(GpLossError, match="serial backend runs one"):
        make_backend("serial", spec, workers=2, local_evaluate=print)


@pytest.mark.slow
def test_deap_map_on_the_process_backend():
    from deap import algorithms

    import gp_loss

    random.seed(3)
    toolbox = gp_loss.make_toolbox("cls_digits", steps=60, backend="process", workers=2)
    try:
        population = toolbox.population(n=12)
        population, _ = algorithms.eaSimple(population, toolbox, cxpb=0.5, mutpb=0.5, ngen=1, verbose=False)
        assert all(ind.fitness.valid for ind in population)
        assert len(toolbox.evaluate.history) >= 12
        assert toolbox.map(abs, [-1, -2, 3]) == [1, 2, 3]
    finally:
        toolbox.close()


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_search_on_a_local_instance(tmp_path, local_ray):
    run = tmp_path / "ray"
    state = _run(_digits(120, backend="ray", workers=2), run)
    events = _events(run)
    assert [e["id"] for e in events] == list(range(120)) and state.trained > 0


@pytest.mark.slow
def test_ray_worker_killed_mid_evaluation_is_retried(tmp_path, local_ray):
    from gp_loss.execution.ray_backend import RayBackend

    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    spec = WorkerSpec("two_slot_toy", {"sleep": 3.0, "pid_dir": str(pid_dir)}, {}, ("tasks", *TOY))
    backend = RayBackend(spec, 2)
    backend.submit(1, Candidate(dict(GOOD)))
    os.kill(_wait_for_pid(pid_dir), signal.SIGKILL)
    finished = []
    while not finished:
        finished = backend.wait()
    assert finished[0].ticket == 1 and finished[0].result["outcome"] == "trained"
    assert len(list(pid_dir.iterdir())) == 2


DRIVER = """
import sys, time
from gp_loss.execution.base import WorkerSpec
from gp_loss.execution.process import ProcessBackend
from gp_loss.fitness.candidate import Candidate
from tests.gp_loss.test_execution import GOOD, TOY
spec = WorkerSpec("two_slot_toy", {"sleep": 600.0, "pid_dir": sys.argv[1]}, {}, ("tasks", *TOY))
backend = ProcessBackend(spec, 2)
backend.submit(1, Candidate(dict(GOOD)))
backend.submit(2, Candidate({**GOOD, "cls": "neg(mul(y, log(y_hat)))"}))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's reaping is left


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_exit_when_their_driver_is_killed(tmp_path):
    """A driver killed with SIGKILL (or by the OOM killer) runs no cleanup: its workers notice
    that it is gone and exit within seconds instead of living on, re-parented."""
    import subprocess
    import sys

    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    root = Path(__file__).resolve().parents[2]
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(pid_dir)], cwd=root)
    try:
        deadline = time.monotonic() + 120
        while len(list(pid_dir.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = [int(p.read_text()) for p in pid_dir.iterdir()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
