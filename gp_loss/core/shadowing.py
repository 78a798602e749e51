"""gp-loss installs two top-level packages beside ``gp_loss``: ``tasks`` and ``primitives``. A
user's own module of the same name (a ``tasks.py`` is an invoke and celery convention) found
first on ``sys.path`` shadows ours, and the failure it causes later (``cannot import name
'get_task' from 'tasks'``) does not say why. :func:`check` says so in one line when ``gp_loss``
is imported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from gp_loss.core.errors import GpLossError

#: our top-level packages besides gp_loss
PACKAGES = ("primitives", "tasks")


def shadowed(name: str) -> str | None:
    """Where the module that ``import name`` finds lives, when it is not our package; else ``None``."""
    ours = (Path(__file__).resolve().parents[2] / name / "__init__.py").resolve()
    module = sys.modules.get(name)
    if module is not None:
        origin = getattr(module, "__file__", None)
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = None if spec is None else spec.origin
    if origin is None or Path(origin).resolve() == ours:
        return None
    return str(origin)


def check() -> None:
    """A shadowed ``primitives`` (which every loss needs) raises; a shadowed ``tasks`` (which
    searches and task names need, but ``load_loss`` does not) is reported on stderr."""
    for name in PACKAGES:
        origin = shadowed(name)
        if origin is None:
            continue
        message = (
            f"your module {origin} shadows gp-loss's package {name!r}: rename it, or run from a "
            "folder where it is not first on sys.path"
        )
        if name == "primitives":
            raise GpLossError(message)
        sys.stderr.write(f"gp-loss: {message}; searches and task names will fail\n")
