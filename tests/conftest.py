"""Test-session settings: every search runs without the persistent search cache unless a test
names one, so that no test's outcomes depend on what an earlier test (or run) stored."""

from __future__ import annotations

import os

os.environ["GP_LOSS_SEARCH_CACHE"] = "off"  # subprocesses (run_cli) inherit it
