"""TensorBoard and MLflow tracking, read back with their own readers: what a search logs, that
a kill and a resume write no step twice, and that a tracker which cannot be reached changes
nothing in the search."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.test_cli import ROOT, call_cli

pytest.importorskip("tensorboard", reason="the tracking extra: pip install -e '.[tracking]'")
pytest.importorskip("mlflow", reason="the tracking extra: pip install -e '.[tracking]'")


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line]


def _scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar point in a TensorBoard directory, duplicates kept (all event files)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"scalars": 0}, purge_orphaned_data=False)
    accumulator.Reload()
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]
    }


def _mlflow_run(run: Path, uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    return client, client.get_run(json.loads((run / "tracking.json").read_text())["mlflow_run_id"])


@pytest.fixture(scope="module")
def tracked(tmp_path_factory) -> tuple[Path, Path, str]:
    """One short cls_digits search logged to both backends (the tests below only read it)."""
    root = tmp_path_factory.mktemp("tracked")
    run, board, uri = root / "run", root / "tb", f"sqlite:///{root / 'mlflow.db'}"
    done = call_cli(
        "evolve", "--task", "cls_digits", "--max-trained", "4", "--cache", "off", "--out", str(run),
        "--tensorboard", str(board), "--mlflow", uri, "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return run, board / run.name, uri


def test_tensorboard_holds_each_trained_fitness_and_the_best_so_far(tracked):
    run, logdir, _ = tracked
    events = _events(run)
    trained = [e for e in events if e["outcome"] == "trained"]
    scalars = _scalars(logdir)
    assert scalars["fitness"] == pytest.approx([(e["id"] + 1, e["fitness"]) for e in trained])
    best = [v for _, v in scalars["best_so_far"]]
    assert best == sorted(best) and best[-1] == pytest.approx(max(e["fitness"] for e in trained))
    explored = [s for s, _ in scalars["search/explored"]]  # once per batch of events
    assert explored == sorted(set(explored)) and scalars["search/explored"][-1] == (len(events), len(events))
    counts = Counter(e["outcome"] for e in events)
    assert scalars["outcomes/trained"][-1][1] == counts["trained"]
    assert scalars["outcomes/invalid"][-1][1] == counts["invalid"]


def test_mlflow_run_holds_params_metrics_formula_and_files(tracked):
    run, _, uri = tracked
    client, found = _mlflow_run(run, uri)
    assert found.info.status == "FINISHED" and found.info.run_name == run.name
    params = found.data.params
    assert params["task"] == "cls_digits" and params["evolution.seed"] == "0"
    assert params["limits.max_trained"] == "4" and params["pipeline.lrp_protocol"] == "shared"
    trained = [e for e in _events(run) if e["outcome"] == "trained"]
    history = client.get_metric_history(found.info.run_id, "fitness")
    assert sorted((m.step, m.value) for m in history) == pytest.approx(
        [(e["id"] + 1, e["fitness"]) for e in trained]
    )
    best = json.loads((run / "best.json").read_text())
    assert found.data.tags["best.formula"].startswith(f"loss #{best['id']}, fitness")
    artifacts = {f.path for f in client.list_artifacts(found.info.run_id)}
    assert {"best.json", "run.json", "report.md", "report.html", "best_fitness.png"} <= artifacts
    local = client.download_artifacts(found.info.run_id, "best.json", str(run.parent / "download"))
    assert json.loads(Path(local).read_text()) == best
    assert (run.parent / "mlflow-artifacts").is_dir()  # beside the database, not ./mlruns
    assert not (ROOT / "mlruns").exists()


def test_an_export_bundle_of_a_tracked_run_joins_its_mlflow_files(tracked):
    run, _, uri = tracked
    done = call_cli("export", str(run / "best.json"), "--format", "bundle", "-o", str(run.parent / "bundle"))
    assert done.returncode == 0, done.stderr
    client, found = _mlflow_run(run, uri)
    files = {f.path for f in client.list_artifacts(found.info.run_id, "bundle")}
    assert {"bundle/MANIFEST.json", "bundle/loss.py", "bundle/best.json"} <= files


@pytest.mark.slow
def test_a_kill_and_a_resume_log_no_step_twice_and_lose_none(tmp_path):
    run, board, uri = tmp_path / "run", tmp_path / "tb", f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [
        sys.executable, str(ROOT / "cli.py"), "evolve", "--task", "cls_digits", "--max-explored", "600",
        "--cache", "off", "--out", str(run), "--tensorboard", str(board), "--mlflow", uri, "--quiet",
    ]  # fmt: skip
    search = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and search.poll() is None:
        if (
            (run / "events.jsonl").is_file()
            and len(_events(run)) >= 150
            and (run / "tracking.json").is_file()
        ):
            break
        time.sleep(0.2)
    assert search.poll() is None, "the search ended before it could be killed"
    os.kill(search.pid, signal.SIGKILL)
    search.wait()
    killed_at = len(_events(run))
    resumed = call_cli("evolve", "--resume", "--out", str(run), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    events = _events(run)
    assert len(events) == 600 > killed_at
    trained = [(e["id"] + 1, e["fitness"]) for e in events if e["outcome"] == "trained"]
    scalars = _scalars(board / run.name)
    for tag, points in scalars.items():
        steps = [s for s, _ in points]
        assert len(steps) == len(set(steps)), f"TensorBoard {tag}: a step written twice"
    assert scalars["fitness"] == pytest.approx(trained)  # every trained loss once, none lost
    assert scalars["search/explored"][-1] == (600, 600)
    client, found = _mlflow_run(run, uri)
    for key in ("search/explored", "fitness", "best_so_far", "outcomes/invalid"):
        steps = [m.step for m in client.get_metric_history(found.info.run_id, key)]
        assert len(steps) == len(set(steps)), f"MLflow {key}: a step written twice"
    history = client.get_metric_history(found.info.run_id, "fitness")
    assert sorted((m.step, m.value) for m in history) == pytest.approx(trained)
    assert found.info.status == "FINISHED"


def test_an_unreachable_tracker_leaves_the_search_unchanged(tmp_path):
    common = ["--task", "cls_digits", "--max-explored", "80", "--cache", "off", "--quiet"]
    plain = call_cli("evolve", *common, "--out", str(tmp_path / "plain"))
    tracked = call_cli(
        "evolve", *common, "--out", str(tmp_path / "tracked"), "--mlflow", "http://127.0.0.1:9"
    )
    assert plain.returncode == tracked.returncode == 0, tracked.stderr
    failures = [line for line in tracked.stderr.splitlines() if "tracking to MLflow stopped" in line]
    assert len(failures) == 1 and "the search goes on" in failures[0]

    def key(event: dict) -> tuple:
        return event["trees"], event["outcome"], event.get("fitness")

    assert [key(e) for e in _events(tmp_path / "tracked")] == [key(e) for e in _events(tmp_path / "plain")]
    assert (
        json.loads((tmp_path / "tracked" / "best.json").read_text())["slots"]
        == json.loads((tmp_path / "plain" / "best.json").read_text())["slots"]
    )


def test_without_the_extra_a_tracking_flag_is_one_line_naming_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    done = call_cli(
        "evolve", "--task", "cls_digits", "--max-explored", "5", "--out", str(tmp_path / "r"), "--mlflow", "x"
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "gp-loss: --mlflow (keyword mlflow=) needs mlflow: pip install -e '.[tracking]' (or pip install mlflow)"
    )
    assert not (tmp_path / "r").exists()


def test_search_keywords_track_like_the_flags(tmp_path):
    import gp_loss

    result = gp_loss.search(
        "cls_digits",
        max_explored=30,
        out=tmp_path / "run",
        tensorboard=tmp_path / "tb",
        cache="off",
        progress=False,
    )
    config = json.loads((result.directory / "run.json").read_text())
    assert config["tracking"] == {"tensorboard": str((tmp_path / "tb").resolve()), "mlflow": None}
    assert _scalars(tmp_path / "tb" / "run")["search/explored"][-1] == (30, 30)
