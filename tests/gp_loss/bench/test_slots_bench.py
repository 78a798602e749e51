"""``bench slots``: joint and slot-wise search side by side, and how draws-to-fill is counted."""

from __future__ import annotations

from gp_loss.bench.slots import draws_to_fill


def _event(phase: str, searched: list[str]) -> dict:
    return {"phase": phase, "searched": searched}


def test_draws_to_fill_counts_each_population_until_its_first_child():
    joint = [_event("init", ["cls", "reg"])] * 7 + [_event("evolve", ["cls", "reg"])] * 3
    assert draws_to_fill(joint) == {"all": 7}
    slotwise = (
        [_event("anchor", [])]
        + [_event("init", ["cls"])] * 4
        + [_event("evolve", ["cls"])]
        + [_event("init", ["reg"])] * 9  # never filled in its turn
        + [_event("combine", ["cls", "reg"]), _event("evolve", ["cls", "reg"])]
    )
    assert draws_to_fill(slotwise) == {"slot:cls": 4, "slot:reg": None}
    assert draws_to_fill([_event("init", ["cls", "reg"])] * 3) == {"all": None}


def test_bench_slots_runs_both_modes_on_the_same_candidates_cap(tmp_path):
    import gp_loss.testing.tasks  # noqa: F401  (registers two_slot_toy)
    from gp_loss.bench.slots import run

    text = run("two_slot_toy", None, seed=2, population=2, out=tmp_path, max_explored=80)
    rows = [line for line in text.splitlines() if line.startswith(("| joint", "| slotwise"))]
    assert len(rows) == 2 and "80 candidates per mode" in text
    assert rows[0].split("|")[2].strip() == rows[1].split("|")[2].strip() == "80"  # explored
    assert rows[1].split("|")[4].strip() != "-"  # the slot-wise row names each slot's draws
    assert (tmp_path / "joint" / "events.jsonl").exists() and (
        tmp_path / "slotwise" / "events.jsonl"
    ).exists()
