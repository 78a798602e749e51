"""``bench soak``: a search with the process backend under a watchdog that kills its workers and,
once, its driver; then the books are checked.

A reference run with the same settings runs first, unkilled. The soak run starts; every
``kill_every`` seconds the watchdog SIGKILLs a random worker process of the live driver; once,
halfway through, it SIGKILLs the driver itself and resumes the run (``evolve --resume``) at
once. At the end:

- every event id from 0 to the last is in ``events.jsonl`` exactly once, and the checkpoint
  counts as many (``lost`` and ``duplicates`` must be 0);
- the events agree with the reference run's, genome for genome and outcome for outcome, up to
  the first one that differs: with two workers the order in which results return depends on
  timing, so two runs part ways at some point, killed or not; that point is reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gp_loss.bench.timing import machine
from gp_loss.core.events import FAILED

ROOT = Path(__file__).resolve().parents[2]


def _command(out: Path, limit: list[str], seed: int, steps: int | None, resume: bool = False) -> list[str]:
    base = [sys.executable, str(ROOT / "cli.py"), "evolve"]
    if resume:
        return [*base, "--resume", "--out", str(out), "--quiet"]
    task_options = [] if steps is None else ["--task-option", f"steps={steps}"]
    return [
        *base, "--task", "cls_digits", "--backend", "process", "--workers", "2", *limit, *task_options,
        "--seed", str(seed), "--cache", "off", "--out", str(out), "--quiet",
    ]  # fmt: skip


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (the driver's workers), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _events(run: Path) -> list[dict]:
    lines = (run / "events.jsonl").read_bytes().split(b"\n")
    return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Soak:
    """What the soak counted."""

    seconds: float
    worker_kills: int
    driver_kills: int
    events: int
    checkpoint_explored: int
    duplicates: int
    lost: int
    failed: int
    reference_events: int
    agree_until: int
    #: the soaked search's exit code at the end: 0 when it ran to its budget, killed and all
    exit_code: int = 0

    def markdown(self) -> str:
        return "\n".join(
            [
                f"soak: {self.seconds / 60:.1f} min; machine: {machine()}",
                "",
                "| worker kills | driver kills | exit code | events | checkpoint | duplicates | lost | failed | "
                "reference events | same as the reference until event |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| {self.worker_kills} | {self.driver_kills} | {self.exit_code} | {self.events} | "
                f"{self.checkpoint_explored} | {self.duplicates} | {self.lost} | {self.failed} | "
                f"{self.reference_events} | {self.agree_until} |",
            ]
        )

    def to_json(self) -> dict:
        return dict(vars(self))


def run(
    folder: str | os.PathLike,
    minutes: float = 10.0,
    kill_every: float = 30.0,
    seed: int = 0,
    explored: int | None = None,
    steps: int | None = None,
) -> Soak:
    """Run the reference and the soak in ``folder`` (see the module docstring).

    Args:
        minutes: the budget of both runs, unless ``explored`` caps them by candidates instead
            (then the driver is killed once half of them are logged).
        kill_every: seconds between two worker kills.
        explored: a cap on the candidates explored, in place of the time budget.
        steps: cls_digits' proxy steps (``None``: the task's default).
    """
    folder = Path(folder)
    limit = ["--budget", f"{minutes * 60:.0f}s"] if explored is None else ["--max-explored", str(explored)]
    reference, soaked = folder / "reference", folder / "soaked"
    subprocess.run(_command(reference, limit, seed, steps), cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rng = random.Random(seed)
    start = time.monotonic()
    driver = subprocess.Popen(_command(soaked, limit, seed, steps), cwd=ROOT, stdout=subprocess.DEVNULL)
    worker_kills = driver_kills = 0
    next_kill = time.monotonic() + kill_every

    def halfway(now: float) -> bool:
        if explored is None:
            return now >= start + minutes * 30
        return _lines(soaked / "events.jsonl") >= explored // 2

    while driver.poll() is None:
        time.sleep(0.2)
        now = time.monotonic()
        if not driver_kills and halfway(now):
            orphans = _children(driver.pid)
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            driver_kills += 1
            for pid in orphans:  # its workers go down with it, as in a crash of its machine
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            driver = subprocess.Popen(
                _command(soaked, limit, seed, steps, resume=True), cwd=ROOT, stdout=subprocess.DEVNULL
            )
            continue
        if now >= next_kill:
            workers = [pid for pid in _children(driver.pid) if pid != driver.pid]
            if workers:
                victim = rng.choice(workers)
                try:
                    os.kill(victim, signal.SIGKILL)
                    worker_kills += 1
                except ProcessLookupError:
                    pass
            next_kill = now + kill_every
    seconds = time.monotonic() - start
    events = _events(soaked)
    ids = [e["id"] for e in events]
    checkpoint = json.loads((soaked / "checkpoint.json").read_text())["explored"]
    expected = set(range(checkpoint))
    reference_events = _events(reference)
    agree = 0
    for mine, theirs in zip(events, reference_events):
        if (mine["trees"], mine["outcome"]) != (theirs["trees"], theirs["outcome"]):
            break
        agree += 1
    return Soak(
        seconds=seconds,
        worker_kills=worker_kills,
        driver_kills=driver_kills,
        events=len(events),
        checkpoint_explored=checkpoint,
        duplicates=len(ids) - len(set(ids)),
        lost=len(expected - set(ids)),
        failed=sum(e["outcome"] == FAILED for e in events),
        reference_events=len(reference_events),
        agree_until=agree,
        exit_code=driver.returncode,
    )
