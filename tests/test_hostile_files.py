"""Files from elsewhere: each hostile best.json or run directory gives one line on stderr and exit
code 2, within a time and memory bound, and nothing is written but the output the user named."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gp_loss import search
from gp_loss.core.baselines import get_baseline
from tests.test_cli import ROOT, call_cli

CE = get_baseline("cross_entropy").tree
#: every hostile file is refused within these bounds
SECONDS, MEMORY_MB = 15.0, 1500


def _best(slots=None, **extra) -> dict:
    return {
        "format": "gp-loss/1",
        "slots": slots or {"cls": {"tree": CE, "adapter": "softmax_onehot"}},
        **extra,
    }


def _deep(depth: int) -> str:
    return "neg(" * depth + "mul(y, log(y_hat))" + ")" * depth


def _wide(nodes: int) -> str:
    tree = "y_hat"
    while len(tree) < nodes * 4:  # ~4 characters a node
        tree = f"add({tree}, {tree})"
    return f"mul(y, {tree})"


HOSTILE = {
    "a tree of a million nodes": json.dumps(
        _best({"cls": {"tree": _wide(1_000_000), "adapter": "softmax_onehot"}})
    ).encode(),
    "a tree of depth 100,000": json.dumps(
        _best({"cls": {"tree": _deep(100_000), "adapter": "softmax_onehot"}})
    ).encode(),
    "JSON nested 100,000 deep": b'{"format": "gp-loss/1", "slots": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "an integer of 10,000 digits": b'{"format": "gp-loss/1", "fitness": ' + b"9" * 10_000 + b', "slots": {}}',
    "a fitness of 1e400": json.dumps(_best()).replace('"slots"', '"fitness": 1e400, "slots"').encode(),
    "non-UTF-8 bytes": json.dumps(_best()).encode().replace(b'"tree": "', b'"tree": "\xff\xfe'),
    "a slot name with path separators": json.dumps(
        _best({"../../etc/x": {"tree": CE, "adapter": "softmax_onehot"}})
    ).encode(),
    "a slot named after a keyword": json.dumps(
        _best({"class": {"tree": CE, "adapter": "softmax_onehot"}})
    ).encode(),
    "an adapter option that does not exist": json.dumps(
        _best({"cls": {"tree": CE, "adapter": "softmax_onehot", "adapter_options": {"ignore": 3}}})
    ).encode(),
    "a 100 MB file": None,  # written by the test
}


#: A small launcher: it sets the address-space limit, runs the command as its own child and writes
#: that child's peak RSS (kB) to argv[1]. The command is a grandchild of the test process, so that
#: the test process's own resident pages (which a forked child's peak counts until it execs) are
#: not in the measure.
_LAUNCHER = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))  # a hard wall far above the bound
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as handle:
    handle.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _limited(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run with an address-space limit; returns the result, seconds and peak MB of the command."""
    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(peak_file), *command],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        seconds = time.monotonic() - start
        peak = int(peak_file.read_text()) / 1024
    return done, seconds, peak


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_best_json_is_refused_in_one_line(tmp_path, case):
    work = tmp_path / "work"
    work.mkdir()
    path = work / "best.json"
    if HOSTILE[case] is None:
        with open(path, "wb") as handle:
            handle.write(b'{"format": "gp-loss/1", "slots": {}, "pad": "')
            handle.write(b"x" * (100 * 2**20))
            handle.write(b'"}')
    else:
        path.write_bytes(HOSTILE[case])
    before = sorted(p.name for p in work.iterdir())
    out = work / "exported.py"
    done, seconds, peak = _limited(
        [sys.executable, str(ROOT / "cli.py"), "export", str(path), "-o", str(out)], work
    )
    assert done.returncode == 2, (case, done.stderr[-300:])
    assert done.stderr.startswith("gp-loss: ") and done.stderr.count("\n") == 1, done.stderr[:300]
    assert len(done.stderr) < 600  # one readable line, whatever the file holds
    assert seconds < SECONDS and peak < MEMORY_MB, (seconds, peak)
    assert sorted(p.name for p in work.iterdir()) == before  # nothing written, not even the output


def test_unknown_keys_are_kept_not_refused(tmp_path):
    path = tmp_path / "best.json"
    path.write_text(json.dumps(_best(notes="from a colleague", extra={"a": [1, 2]})))
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "export", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0 and "class Loss(" in done.stdout


def test_hostile_run_directories(tmp_path):
    run = tmp_path / "run"
    search("cls_digits", out=run, max_explored=30, progress=False, cache="off", task_options={"steps": 20})
    events = run / "events.jsonl"
    good = events.read_bytes()
    lines = good.split(b"\n")
    cases = {
        "a line of non-UTF-8 bytes": b"\n".join([*lines[:10], b"\xff\xfe\xfd", *lines[10:]]),
        "a line nested 100,000 deep": b"\n".join([*lines[:10], b"[" * 100_000 + b"]" * 100_000, *lines[10:]]),
        "a line that is not an event": b"\n".join([*lines[:10], b'{"hello": 1}', *lines[10:]]),
    }
    for case, raw in cases.items():
        events.write_bytes(raw)
        shown = call_cli("show", str(run))
        assert shown.returncode == 0 and "10 explored" in shown.stdout, (case, shown.stderr)
        assert "showing the 10 events before it" in shown.stderr
        resumed = call_cli("evolve", "--resume", "--out", str(run))
        assert resumed.returncode == 2 and resumed.stderr.count("\n") == 1, (case, resumed.stderr[-300:])
        assert events.read_bytes() == raw  # refused, not rewritten
    events.write_bytes(good)
