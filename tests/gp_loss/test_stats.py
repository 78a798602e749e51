"""Paired comparisons over seeds against hand-computed intervals."""

from __future__ import annotations

import math

import pytest

from gp_loss.results.stats import paired_difference


def test_interval_of_a_hand_checked_case_is_a_tie():
    # differences 1, 2, 3: mean 2, sample std 1; t(0.975, 2 df) = 4.302653; half width 4.302653 / sqrt(3)
    diff = paired_difference([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    half = 4.302653 / math.sqrt(3)
    assert diff.mean == pytest.approx(2.0) and diff.std == pytest.approx(1.0) and diff.n == 3
    assert diff.low == pytest.approx(2.0 - half, abs=1e-5) and diff.high == pytest.approx(
        2.0 + half, abs=1e-5
    )
    assert diff.verdict == "ties"  # the interval [-0.484, 4.484] holds 0


def test_beats_loses_and_identical_results():
    # differences 0.9, 1.0, 1.1, 1.0: std 0.0816, t(0.975, 3) = 3.182446, half 0.1299
    better = paired_difference([1.9, 2.0, 2.1, 2.0], [1.0, 1.0, 1.0, 1.0])
    assert better.low == pytest.approx(1.0 - 3.182446 * 0.0816497 / 2, abs=1e-5)
    assert better.verdict == "beats"
    assert paired_difference([1.0, 1.0, 1.0, 1.0], [1.9, 2.0, 2.1, 2.0]).verdict == "loses"
    same = paired_difference([0.5, 0.7, 0.6], [0.5, 0.7, 0.6])  # the same trainings: a tie, width 0
    assert (same.low, same.high, same.verdict) == (0.0, 0.0, "ties")


def test_diverged_seeds_leave_the_pairs_and_one_pair_is_undetermined():
    diff = paired_difference([0.8, None, 0.9], [0.7, 0.75, None])
    assert diff.n == 1 and diff.mean == pytest.approx(0.1) and diff.verdict == "undetermined"
    assert paired_difference([None], [0.5]).n == 0
