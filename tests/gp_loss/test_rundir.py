"""Run directory: files, exact resume, crash recovery (a real kill -9 included)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import EvolutionConfig, parse_budget
from gp_loss.engine.evolution import Limits
from gp_loss.run.runner import RunSettings, resume, start

ROOT = Path(__file__).resolve().parents[2]
VOLATILE = ("seconds", "time")


def _settings(n: int, seed: int = 1) -> RunSettings:
    return RunSettings(
        "cls_digits",
        {"steps": 60},
        evolution=EvolutionConfig(population_size=4, seed=seed),
        limits=Limits(max_explored=n),
    )


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()]


def _stable(events):
    return [{k: v for k, v in e.items() if k not in VOLATILE} for e in events]


def test_budget_parsing():
    assert parse_budget("90s") == 90 and parse_budget("10m") == 600 and parse_budget("2h") == 7200
    assert parse_budget("1h30m") == 5400 and parse_budget("45") == 45
    for bad in ("", "ten minutes", "5x", "m"):
        with pytest.raises(GpLossError, match="cannot read budget"):
            parse_budget(bad)


def test_run_directory_files(tmp_path):
    run = tmp_path / "run"
    state = start(_settings(150), run, progress=False).run()
    config = json.loads((run / "run.json").read_text())
    assert (
        config["task"] == "cls_digits" and config["evolution"]["seed"] == 1 and "torch" in config["versions"]
    )
    events = _events(run)
    assert [e["id"] for e in events] == list(range(150))
    for key in ("id", "parent", "mutation", "trees", "outcome", "lrp_gain", "fitness", "metrics", "seconds"):
        assert key in events[0]
    checkpoint = json.loads((run / "checkpoint.json").read_text())
    assert checkpoint["explored"] == 150 and checkpoint["rng"]
    best = json.loads((run / "best.json").read_text())
    assert best["format"] == "gp-loss/1" and best["fitness"] == state.best["fitness"]
    assert best["slots"]["cls"]["adapter"] == "softmax_onehot"
    with pytest.raises(GpLossError, match="already holds a run"):
        start(_settings(10), run, progress=False)


def test_resume_continues_exactly(tmp_path):
    start(_settings(160), tmp_path / "whole", progress=False).run()
    start(_settings(70), tmp_path / "split", progress=False).run()
    resume(tmp_path / "split", max_explored=160, progress=False).run()
    assert _stable(_events(tmp_path / "whole")) == _stable(_events(tmp_path / "split"))
    assert (tmp_path / "whole" / "best.json").read_text() == (tmp_path / "split" / "best.json").read_text()


def test_resume_repairs_a_torn_line_and_a_missing_event(tmp_path):
    run = tmp_path / "run"
    start(_settings(40), run, progress=False).run()
    lines = (run / "events.jsonl").read_text().splitlines(keepends=True)
    # the kill came after the checkpoint was replaced, while the last event was half written
    (run / "events.jsonl").write_text("".join(lines[:-1]) + lines[-1][:25])
    search = resume(run, max_explored=60, progress=False)
    assert _events(run)[-1] == json.loads(lines[-1])
    search.run()
    events = _events(run)
    assert [e["id"] for e in events] == list(range(60))
    assert "".join(lines) == (run / "events.jsonl").read_text()[: len("".join(lines))]


def test_resume_errors(tmp_path):
    with pytest.raises(GpLossError, match="holds no run"):
        resume(tmp_path / "nothing", progress=False)
    run = tmp_path / "run"
    start(_settings(20), run, progress=False).run()
    with open(run / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"id": 99}) + "\n")
        fh.write(json.dumps({"id": 100}) + "\n")
    with pytest.raises(GpLossError, match="changed by hand"):
        resume(run, progress=False)


def _count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _evolve(run: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, str(ROOT / "cli.py"), "evolve", "--out", str(run), "--quiet", *extra]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


EXPLORED = 200


@pytest.mark.slow
def test_kill_9_at_any_moment_loses_nothing(tmp_path):
    """Kill the real CLI process with SIGKILL several times, resume each time, compare."""
    flags = [
        "--task",
        "cls_digits",
        "--max-explored",
        str(EXPLORED),
        "--population",
        "4",
        "--seed",
        "1",
        "--task-option",
        "steps=30",
    ]
    reference = tmp_path / "reference"
    assert _evolve(reference, *flags).wait(timeout=600) == 0
    run = tmp_path / "killed"
    process = _evolve(run, *flags)
    rng = random.Random(0)
    snapshots = []
    events_file = run / "events.jsonl"
    for attempt in range(6):
        if attempt == 0:
            time.sleep(rng.uniform(0.2, 1.0))  # during start-up, before the run directory exists
        else:  # mid-search: after a random number of new events, at a random moment
            seen = _count(events_file)
            target = seen + rng.randint(5, 40)
            while process.poll() is None and _count(events_file) < target:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
        if process.poll() is not None:
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        if events_file.exists():
            text = events_file.read_text()
            snapshots.append(text[: text.rfind("\n") + 1])  # what had been reported
        process = _evolve(run, "--resume") if (run / "run.json").exists() else _evolve(run, *flags)
    assert process.wait(timeout=600) == 0, process.stderr.read().decode()
    final = (run / "events.jsonl").read_text()
    for snapshot in snapshots:
        assert final.startswith(snapshot), "an earlier line was lost or rewritten"
    events = _events(run)
    assert [e["id"] for e in events] == list(range(EXPLORED))
    assert _stable(events) == _stable(_events(reference))
    assert len(snapshots) >= 3


@pytest.mark.slow
def test_driver_killed_with_process_workers_resumes(tmp_path):
    """A crash of the driver while two workers evaluate: resume, nothing reported is lost."""
    run = tmp_path / "parallel"
    flags = [
        "--task",
        "cls_digits",
        "--max-explored",
        "250",
        "--population",
        "4",
        "--seed",
        "1",
        "--task-option",
        "steps=60",
        "--backend",
        "process",
        "--workers",
        "2",
    ]
    process = _evolve(run, *flags)
    events_file = run / "events.jsonl"
    while process.poll() is None and _count(events_file) < 60:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    text = events_file.read_text()
    reported = text[: text.rfind("\n") + 1]
    resumed = _evolve(run, "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()
    assert events_file.read_text().startswith(reported)
    assert [e["id"] for e in _events(run)] == list(range(250))
