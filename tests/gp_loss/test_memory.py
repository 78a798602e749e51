"""The persistent search cache: hits and misses, gradient-equivalent hits, fingerprints, two real
processes writing at once, damaged and foreign files, and the ``cache`` command."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter

import pytest

from gp_loss import search
from gp_loss.core.baselines import get_baseline
from gp_loss.core.settings import PipelineOptions
from gp_loss.engine.search_cache import SearchCache, task_fingerprint
from gp_loss.fitness.candidate import Candidate
from gp_loss.fitness.pipeline import FitnessPipeline
from tasks import get_task
from tests.test_cli import ROOT, call_cli

TINY = {"steps": 25}
CE = get_baseline("cross_entropy").tree


def _outcomes(run) -> Counter:
    return Counter(json.loads(line)["outcome"] for line in (run / "events.jsonl").read_text().splitlines())


def test_a_second_run_finds_every_judged_loss_in_the_cache(tmp_path):
    cache = tmp_path / "cache.sqlite"
    first = search(
        "cls_digits", out=tmp_path / "a", max_explored=250, progress=False, cache=cache, task_options=TINY
    )
    again = search(
        "cls_digits", out=tmp_path / "b", max_explored=250, progress=False, cache=cache, task_options=TINY
    )
    search("cls_digits", out=tmp_path / "c", max_explored=250, progress=False, cache="off", task_options=TINY)
    a, b, c = _outcomes(tmp_path / "a"), _outcomes(tmp_path / "b"), _outcomes(tmp_path / "c")
    computed = sum(a[k] for k in ("invalid", "rejected", "diverged", "trained"))
    assert computed > 0 and a["trained"] > 0 and a == c  # the cache off: the same run as the first
    assert b["cached"] == computed and not any(b[k] for k in ("invalid", "rejected", "diverged", "trained"))
    assert (b["duplicate"], b["equivalent"]) == (a["duplicate"], a["equivalent"])  # the same search, cheaper
    assert again.state.trained == 0 and again.fitness == first.fitness  # budgets count trainings
    events = [json.loads(line) for line in (tmp_path / "b" / "events.jsonl").read_text().splitlines()]
    hit = next(e for e in events if e["outcome"] == "cached" and e["source_outcome"] == "trained")
    assert hit["fitness"] is not None and hit["reason"].startswith("cache: judged before (trained)")
    assert hit["reused_from"] is None  # not an event of this run


def test_a_search_with_another_seed_reuses_the_first_ones_judgements(tmp_path):
    cache = tmp_path / "cache.sqlite"
    search("cls_digits", out=tmp_path / "a", max_explored=250, progress=False, cache=cache, task_options=TINY)
    search(
        "cls_digits",
        out=tmp_path / "b",
        max_explored=250,
        progress=False,
        cache=cache,
        task_options=TINY,
        seed=1,
    )
    first, second = _outcomes(tmp_path / "a"), _outcomes(tmp_path / "b")
    assert first != second  # another evolution ...
    assert second["cached"] > 0  # ... judged by the same proxy (seed 0): what the first knew is reused
    settings = json.loads((tmp_path / "b" / "run.json").read_text())
    assert settings["task_options"]["seed"] == 0 and settings["evolution"]["seed"] == 1


def test_a_run_from_before_the_pinned_proxy_seed_resumes_with_its_own():
    from gp_loss.run.run_directory import migrate_run_json
    from gp_loss.run.runner import RunSettings, task_options

    old = RunSettings.from_json(
        migrate_run_json({"task": "cls_digits", "task_options": {}, "evolution": {"seed": 3}})
    )
    assert task_options(old)["seed"] == 3


def test_a_gradient_equivalent_loss_reuses_a_cached_training(tmp_path):
    task = get_task("cls_digits", **TINY)
    options = PipelineOptions()
    fingerprint, _ = task_fingerprint(task, options)
    cache = SearchCache(tmp_path / "cache.sqlite")
    first = FitnessPipeline(task, options, (cache, fingerprint, "first"))
    trained = first(Candidate({"cls": CE}, 0))
    assert trained.outcome == "trained"
    later = FitnessPipeline(task, options, (cache, fingerprint, "later"))  # a new run: empty in-run caches
    same_gradient = later(
        Candidate({"cls": "mul(neg(y), log(y_hat))"}, 0)
    )  # -y log p again, written otherwise
    assert same_gradient.outcome == "cached" and same_gradient.source_outcome == "trained"
    assert same_gradient.fitness == trained.fitness and "gradient-equivalent" in same_gradient.reason


def test_the_fingerprint_changes_with_what_decides_a_result():
    options = PipelineOptions()
    base, _ = task_fingerprint(get_task("cls_digits", steps=30), options)
    assert task_fingerprint(get_task("cls_digits", steps=30), options)[0] == base
    assert task_fingerprint(get_task("cls_digits", steps=31), options)[0] != base
    assert task_fingerprint(get_task("cls_digits", steps=30, seed=1), options)[0] != base
    assert task_fingerprint(get_task("cls_digits", steps=30), PipelineOptions(lrp_eta=0.3))[0] != base
    assert task_fingerprint(get_task("cls_digits", steps=30), PipelineOptions(max_nodes=9))[0] != base
    assert (
        task_fingerprint(get_task("cls_digits", steps=30), PipelineOptions(gec=False))[0] == base
    )  # GEC: no effect


@pytest.mark.slow
def test_two_processes_share_one_cache_at_once(tmp_path):
    cache = tmp_path / "shared.sqlite"
    runs = []
    for seed in (1, 2):
        command = [
            sys.executable, str(ROOT / "cli.py"), "evolve", "--task", "cls_digits", "--max-explored", "400",
            "--seed", str(seed), "--task-option", "steps=25", "--cache", str(cache), "--out", str(tmp_path / f"r{seed}"), "--quiet",
        ]  # fmt: skip
        runs.append(
            subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for process in runs:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    db = sqlite3.connect(str(cache))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    writers = {run for (run,) in db.execute("SELECT DISTINCT run FROM results")}
    assert writers == {"r1", "r2"}
    stored = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    computed = sum(
        n
        for r in ("r1", "r2")
        for k, n in _outcomes(tmp_path / r).items()
        if k in ("invalid", "rejected", "trained", "diverged")
    )
    assert stored <= computed and stored > 0  # each genome once, whoever came first


@pytest.mark.slow
def test_a_damaged_or_foreign_file_is_a_one_line_error_and_loses_no_run(tmp_path):
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    done = call_cli(
        "evolve",
        "--task",
        "cls_digits",
        "--max-explored",
        "5",
        "--cache",
        str(broken),
        "--out",
        str(tmp_path / "r"),
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "not usable" in done.stderr and "--cache off" in done.stderr
    assert not (tmp_path / "r").exists() and broken.read_bytes().startswith(b"this is not")
    foreign = tmp_path / "foreign.sqlite"
    sqlite3.connect(str(foreign)).execute("CREATE TABLE photos (id INTEGER)").connection.commit()
    done = call_cli(
        "evolve",
        "--task",
        "cls_digits",
        "--max-explored",
        "5",
        "--cache",
        str(foreign),
        "--out",
        str(tmp_path / "f"),
    )
    assert done.returncode == 2 and "something else" in done.stderr
    # a run whose cache breaks before it resumes: nothing of the run changes
    run = tmp_path / "kept"
    search(
        "cls_digits",
        out=run,
        max_explored=30,
        progress=False,
        cache=tmp_path / "ok.sqlite",
        task_options=TINY,
    )
    before = (run / "events.jsonl").read_bytes()
    (tmp_path / "ok.sqlite").write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"ok.sqlite{suffix}").unlink(missing_ok=True)
    done = call_cli("evolve", "--resume", "--out", str(run), "--max-explored", "60")
    assert done.returncode == 2 and "not usable" in done.stderr
    assert (run / "events.jsonl").read_bytes() == before


def test_cache_commands(tmp_path):
    cache = tmp_path / "cache.sqlite"
    search("cls_digits", out=tmp_path / "a", max_explored=60, progress=False, cache=cache, task_options=TINY)
    done = call_cli("cache", "stats", "--cache", str(cache), "--json")
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)["fingerprints"]
    assert entry["task"] == "cls_digits" and sum(entry["results"].values()) > 0
    done = call_cli("cache", "export", "--cache", str(cache), "-o", str(tmp_path / "all.jsonl"))
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert done.returncode == 0 and len(lines) == sum(entry["results"].values())
    assert {"fingerprint", "task", "genome", "run", "result"} <= set(json.loads(lines[0]))
    done = call_cli("cache", "clear", "--cache", str(cache), "--task", "cls_digits")
    assert done.returncode == 0 and f"deleted {len(lines)} results" in done.stdout
    assert (
        json.loads(call_cli("cache", "stats", "--cache", str(cache), "--json").stdout)["fingerprints"] == []
    )
    missing = call_cli("cache", "stats", "--cache", str(tmp_path / "none.sqlite"))
    assert missing.returncode == 2 and "no search cache" in missing.stderr


@pytest.mark.parametrize("workers", [2])
def test_process_workers_leave_the_cache_to_the_driver(tmp_path, workers):
    cache = tmp_path / "cache.sqlite"
    found = search(
        "cls_digits", out=tmp_path / "p", max_trained=3, progress=False, cache=cache, backend="process",
        workers=workers, task_options=TINY,
    )  # fmt: skip
    assert found.state.trained >= 3
    rows = sqlite3.connect(str(cache)).execute("SELECT COUNT(*), COUNT(DISTINCT run) FROM results").fetchone()
    assert rows[0] > 0 and rows[1] == 1
