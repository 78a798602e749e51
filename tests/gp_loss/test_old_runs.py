"""Run directories and best.json files written by earlier code keep working: a run written on
2026-12-07 (tests/data/run_2026_12, cls_digits, 70 explored) is shown, reported, exported,
loaded and resumed; run.json files of older forms are brought up to date in one place
(:func:`gp_loss.run.run_directory.migrate_run_json`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from gp_loss.run.run_directory import migrate_run_json
from tests.test_cli import call_cli

FIXTURE = Path(__file__).parent.parent / "data" / "run_2026_12"


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    return run


def _older_form(run_json: dict) -> dict:
    """run.json as runs before the shared LRP, the pinned proxy seed, the per-slot initial
    population, the search cache and tracking wrote it (size limits kept with the evolution)."""
    old = json.loads(json.dumps(run_json))
    for key in ("max_height", "max_nodes", "constant_one"):
        old["evolution"][key] = old["pipeline"].pop(key)
    for key, where in (
        ("lrp_protocol", "pipeline"),
        ("per_slot_init", "evolution"),
        ("seed", "task_options"),
    ):
        old[where].pop(key)
    for key in ("cache", "tracking", "config"):
        old.pop(key)
    return old


def test_an_older_run_json_reads_as_today_s():
    today = json.loads((FIXTURE / "run.json").read_text())
    migrated = migrate_run_json(_older_form(today))
    assert migrated["pipeline"] == {**today["pipeline"], "lrp_protocol": "paper"}  # what those runs used
    # the fixture predates --slot-search and slot weights: those runs searched jointly, weight 1
    before_slots = {"slot_search": "joint", "weight_mutation": 0.0}
    assert migrated["evolution"] == {**today["evolution"], "per_slot_init": False, **before_slots}
    assert migrated["task_options"]["seed"] == today["evolution"]["seed"]
    assert migrated["cache"] == "off" and migrated["tracking"] == {}
    assert migrate_run_json(migrated) == migrated  # today's form is left as it is
    assert migrate_run_json(today)["evolution"]["slot_search"] == "joint"


def test_a_seg_voc_run_from_before_the_fwiou_fitness_resumes_reading_its_target():
    today = json.loads((FIXTURE / "run.json").read_text())
    seg = {**today, "task": "seg_voc", "task_info": {**today["task_info"], "metric": "mIoU"}}
    seg["task_info"].pop("fitness_metric", None)
    assert migrate_run_json(seg)["task_options"]["fitness_metric"] == "mIoU"
    seg["task_info"]["metric"] = "BIoU"  # a target the search reads as itself either way
    assert "fitness_metric" not in migrate_run_json(seg)["task_options"]
    seg["task_info"] |= {"metric": "mIoU", "fitness_metric": "FWIoU"}  # today's code: left as it is
    assert "fitness_metric" not in migrate_run_json(seg)["task_options"]
    assert "fitness_metric" not in migrate_run_json(today)["task_options"]  # cls_digits reads its target


def test_a_run_from_today_s_code_is_shown_reported_exported_and_loaded(old_run):
    shown = call_cli("show", str(old_run), "--json")
    assert shown.returncode == 0, shown.stderr
    board = json.loads(shown.stdout)
    best = json.loads((old_run / "best.json").read_text())
    assert board["explored"] == 70 and board["leaderboard"][0]["id"] == best["id"]
    assert call_cli("report", str(old_run), "--html").returncode == 0
    exported = call_cli("export", str(old_run / "best.json"), "--format", "python")
    assert exported.returncode == 0 and "class Loss" in exported.stdout

    import gp_loss

    loss = gp_loss.load_loss(old_run / "best.json")
    probabilities = torch.softmax(torch.randn(4, 10), 1)
    target = torch.nn.functional.one_hot(torch.arange(4), 10).float()
    assert torch.isfinite(loss(probabilities, target))


@pytest.mark.parametrize("form", ["today", "older"])
def test_a_run_resumes_where_it_stopped(old_run, form):
    if form == "older":
        run_json = old_run / "run.json"
        run_json.write_text(json.dumps(_older_form(json.loads(run_json.read_text()))))
    resumed = call_cli("evolve", "--resume", "--out", str(old_run), "--max-explored", "75", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(line) for line in (old_run / "events.jsonl").read_text().splitlines()]
    assert [e["id"] for e in events] == list(range(75))
    assert json.loads((old_run / "run.json").read_text())["resumes"] == [{"explored": 70}]


def test_modules_imported_by_their_names_from_before_the_sub_packages_still_load():
    import importlib
    import warnings

    from gp_loss.core.errors import GpLossError
    from gp_loss.trees.best_json import read_best

    for old, new in (
        ("gp_loss.errors", "gp_loss.core.errors"),
        ("gp_loss.exchange", "gp_loss.trees.best_json"),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert any(f"{old} is now {new}" in str(w.message) for w in caught)
    assert importlib.import_module("gp_loss.errors").GpLossError is GpLossError
    assert importlib.import_module("gp_loss.exchange").read_best is read_best
