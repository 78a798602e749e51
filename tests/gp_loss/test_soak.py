"""Workers under stress: the process backend's workers SIGKILLed every 2 s and the driver once."""

from __future__ import annotations

import pytest

from gp_loss.bench.soak import run


@pytest.mark.slow
def test_a_soaked_search_accounts_for_every_event_once(tmp_path):
    soak = run(tmp_path, explored=240, steps=40, kill_every=2.0)
    assert soak.driver_kills == 1 and soak.worker_kills >= 2  # a run of ~13 s on 2 cores: ~5 kills
    assert soak.exit_code == 0  # it ran to its cap: no kill, of a worker or the driver, ended it
    assert soak.events == soak.checkpoint_explored == 240
    assert soak.duplicates == 0 and soak.lost == 0
    assert soak.agree_until >= 1  # the same first events as the unkilled run, until timing parts them
