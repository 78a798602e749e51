"""A user's own ``tasks.py`` or ``primitives.py`` shadowing gp-loss's top-level packages is named
in one line when gp_loss is imported."""

from __future__ import annotations

import subprocess
import sys


def _import_gp_loss(folder) -> subprocess.CompletedProcess:
    code = "import gp_loss; from gp_loss import load_loss; print('imported')"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120
    )


def test_a_users_tasks_module_is_named_in_one_line(tmp_path):
    (tmp_path / "tasks.py").write_text("def build():\n    pass\n")
    done = _import_gp_loss(tmp_path)
    assert done.returncode == 0 and "imported" in done.stdout  # load_loss does not need tasks
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "tasks.py") in lines[0] and "'tasks'" in lines[0]


def test_a_users_primitives_module_stops_the_import_with_the_reason(tmp_path):
    (tmp_path / "primitives.py").write_text("x = 1\n")
    done = _import_gp_loss(tmp_path)
    assert done.returncode != 0
    assert f"GpLossError: your module {tmp_path / 'primitives.py'} shadows" in done.stderr.splitlines()[-1]


def test_no_message_without_shadowing(tmp_path):
    done = _import_gp_loss(tmp_path)
    assert done.returncode == 0 and done.stderr == ""
