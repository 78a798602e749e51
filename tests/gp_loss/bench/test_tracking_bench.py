"""``bench tracking``: the plain and the tracked search explore the same losses, and both are timed."""

from __future__ import annotations

import pytest

pytest.importorskip("mlflow", reason="the tracking extra: pip install -e '.[tracking]'")


def test_the_tracked_search_explores_what_the_plain_one_does():
    from gp_loss.bench.tracking import run

    measured = run("cls_digits", explored=30, rounds=2)
    assert measured.same_events
    assert [sorted(r) for r in measured.rounds] == [
        ["plain", "plain_search", "tracked", "tracked_search"]
    ] * 2
    assert all(0 < r["tracked_search"] <= r["tracked"] for r in measured.rounds)
    text = measured.markdown()
    assert "median search tracked / plain" in text and "| 2 | tracked |" in text
