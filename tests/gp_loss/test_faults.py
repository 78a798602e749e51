"""Faults injected for real: a full filesystem, damaged run files, a second writer, SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gp_loss import search
from tests.test_cli import ROOT, call_cli, run_cli

TINY = {"steps": 25}


@pytest.fixture
def small_disk(tmp_path):
    """A 256 kB tmpfs mounted for the test (needs the right to mount: root, as in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _events(run: Path) -> list[dict]:
    raw = (run / "events.jsonl").read_bytes()
    return [json.loads(line) for line in raw.split(b"\n") if line.strip() and line.endswith(b"}")]


@pytest.mark.slow
def test_a_full_disk_stops_the_search_with_one_line_and_a_checkpoint_that_resumes(small_disk, tmp_path):
    run = small_disk / "run"
    done = run_cli(
        "evolve", "--task", "cls_digits", "--max-explored", "100000", "--task-option", "steps=10",
        "--cache", "off", "--out", str(run), "--quiet",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-500:]
    (error,) = [line for line in done.stderr.splitlines() if not line.startswith("run directory:")]
    assert error.startswith("gp-loss: ") and "no space left on the device" in error
    assert "evolve --resume --out" in done.stderr
    reported = _events(run)
    assert len(reported) > 50  # it ran until the disk filled
    assert not list(run.glob(".*.tmp"))  # no half-written checkpoint left behind
    moved = tmp_path / "moved"
    shutil.copytree(run, moved)  # room again: the same files on a larger disk
    done = run_cli(
        "evolve", "--resume", "--out", str(moved), "--max-explored", str(len(reported) + 20), "--quiet"
    )
    assert done.returncode == 0, done.stderr
    after = _events(moved)
    assert after[: len(reported)] == reported  # nothing reported was lost
    assert [e["id"] for e in after] == list(range(len(after))) and len(after) >= len(reported) + 19


@pytest.mark.slow
def test_a_torn_last_event_line_is_cut_and_the_run_continues(tmp_path):
    run = tmp_path / "run"
    search("cls_digits", out=run, max_explored=40, progress=False, cache="off", task_options=TINY)
    path = run / "events.jsonl"
    intact = path.read_bytes()
    path.write_bytes(intact + b'{"id": 40, "phase": "evol')  # a kill in the middle of a write
    assert call_cli("show", str(run)).returncode == 0
    done = run_cli("evolve", "--resume", "--out", str(run), "--max-explored", "50", "--quiet")
    assert done.returncode == 0, done.stderr
    assert path.read_bytes().startswith(intact)
    assert [e["id"] for e in _events(run)] == list(range(50))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_checkpoint_is_named_and_show_reads_the_events(tmp_path, damage):
    run = tmp_path / "run"
    search("cls_digits", out=run, max_explored=40, progress=False, cache="off", task_options=TINY)
    checkpoint = run / "checkpoint.json"
    raw = checkpoint.read_bytes()
    checkpoint.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else os.urandom(len(raw)))
    events = (run / "events.jsonl").read_bytes()
    done = run_cli("evolve", "--resume", "--out", str(run), "--max-explored", "60")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "checkpoint.json is damaged" in done.stderr and "40 reported events" in done.stderr
    assert (run / "events.jsonl").read_bytes() == events  # nothing was touched
    shown = call_cli("show", str(run))
    assert shown.returncode == 0 and "40 explored" in shown.stdout


@pytest.mark.slow
def test_a_missing_run_json_is_named_and_show_reads_what_is_left(tmp_path):
    run = tmp_path / "run"
    search("cls_digits", out=run, max_explored=40, progress=False, cache="off", task_options=TINY)
    (run / "run.json").unlink()
    done = run_cli("evolve", "--resume", "--out", str(run))
    assert done.returncode == 2 and "events but no run.json" in done.stderr
    shown = call_cli("show", str(run))
    assert shown.returncode == 0 and "40 explored" in shown.stdout
    assert "run.json is missing" in shown.stderr
    assert call_cli("report", str(run), "--no-baselines").returncode == 0


def _start_writer(run: Path) -> subprocess.Popen:
    command = [
        sys.executable, str(ROOT / "cli.py"), "evolve", "--task", "cls_digits", "--budget", "10m",
        "--cache", "off", "--out", str(run), "--quiet",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "checkpoint.json").exists():
        time.sleep(0.2)
    return process


@pytest.mark.slow
def test_one_run_directory_one_writer_and_a_stale_lock_is_taken_over(tmp_path):
    run = tmp_path / "run"
    writer = _start_writer(run)
    try:
        for args in (("evolve", "--resume", "--out", str(run)), ("finalize", str(run))):
            done = call_cli(*args)
            assert done.returncode == 2 and f"process {writer.pid}" in done.stderr, done.stderr
            assert done.stderr.count("\n") == 1
        done = call_cli("evolve", "--task", "cls_digits", "--out", str(run), "--max-explored", "3")
        assert done.returncode == 2 and f"process {writer.pid}" in done.stderr
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    explored = len(_events(run))
    done = run_cli("evolve", "--resume", "--out", str(run), "--max-explored", str(explored + 5), "--quiet")
    assert done.returncode == 0, done.stderr
    assert f"took over the lock left by process {writer.pid}" in done.stderr
