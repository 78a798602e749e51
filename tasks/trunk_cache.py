"""Proxy trunks kept on disk: a model trained once with a task's stock loss, then loaded.

The cheap proxies of det_coco, inst_coco and pose_coco train fresh heads on a frozen trunk, and
seg_voc's shared LRP head (and its optional ``proxy=trunk``) reads a trunk's features. The
trunk is stored in the cache folder under a key of everything that shapes it (a hash of its
settings), written atomically and under a file lock, so parallel workers train a missing trunk
once and a killed run never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from gp_loss.core.errors import GpLossError
from gp_loss.core.file_lock import exclusive
from tasks.data.cache import cache_root
from tasks.training import Training, note

#: Bump when a trunk's training changes in a way its key does not show.
TRUNK_VERSION = 1

Model = TypeVar("Model", bound=torch.nn.Module)


def trunk_key(settings: dict[str, object]) -> str:
    """A short hash of the trunk's settings (``settings`` must be plain JSON)."""
    text = json.dumps({"version": TRUNK_VERSION, **settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def trunk_path(key: str, folder: str = "det_trunks") -> Path:
    """Where the trunk with ``key`` is kept: ``folder`` of the cache folder, beside the built-in
    data."""
    return cache_root() / folder / f"{key}.pt"


def cached_trunk(
    key: str, build: Callable[[], Model], train: Callable[[], Model], folder: str = "det_trunks"
) -> Model:
    """The trunk stored under ``key``, trained by ``train()`` and saved on first use, loaded into
    ``build()`` otherwise; returned frozen, in eval mode."""
    path = trunk_path(key, folder)
    with exclusive(path.with_suffix(".lock")):  # parallel workers train a missing trunk once
        if path.exists():
            model = build()
            try:
                model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            except (RuntimeError, OSError, EOFError) as err:
                raise GpLossError(f"proxy trunk {path} is unreadable ({err}); delete it to retrain") from None
        else:
            model = train()
            scratch = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save(model.state_dict(), scratch)
            os.replace(scratch, path)  # atomic: a killed run leaves no half-written trunk
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def shared_trunk_settings(task, data: object, **extra: object) -> dict[str, object]:
    """The settings every proxy trunk's key holds (``data``: the identity of the search's training
    split; the task's model, weights, seed, ``trunk_steps``, batch size and learning rate), with
    a task's ``extra`` ones."""
    return {
        "data": data,
        "model": task.model_name,
        "weights": task.weights,
        "seed": task.seed,
        "steps": task.trunk_steps,
        "batch_size": task.batch_size,
        "lr": task.lr,
        **extra,
    }


def trained_trunk(task, folder: str, recipe: str, training: Callable[[], Training]) -> torch.nn.Module:
    """``task``'s frozen proxy trunk, on ``task.device``: the run ``training()`` builds (its
    network trained ``task.trunk_steps`` on the search's training split, with ``recipe``'s
    losses, as the note says) once per key of ``task.trunk_settings()``, kept in ``folder`` of
    the cache folder, then loaded into ``task.build_model(task.seed)``."""
    key = trunk_key(task.trunk_settings())

    def train() -> torch.nn.Module:
        note(
            f"{task.name}: training the proxy trunk once ({task.trunk_steps} steps with {recipe}; "
            f"cached as {trunk_path(key, folder)})"
        )
        run = training().advance()
        run.raise_if_diverged(task.seed)
        return run.model

    return cached_trunk(key, lambda: task.build_model(task.seed), train, folder).to(task.device)
