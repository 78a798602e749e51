"""Importing the user's modules that register their own tasks or adapters (``--import``)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from gp_loss.core.errors import GpLossError


def import_modules(modules: Iterable[str]) -> None:
    """Import each module; one that cannot be imported is a one-line error."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise GpLossError(f"cannot import {module!r}: {err}") from None
