"""A found loss as a TorchScript file: ``torch.jit.load`` runs it with no gp-loss installed
(``export --format torchscript``, and the bundle's ``loss.pt``)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import torch

from gp_loss.core.errors import GpLossError
from gp_loss.trees.best_json import BestLoss
from gp_loss.trees.loss_module import describe, file_module


def export_torchscript(best: BestLoss, path: str | os.PathLike) -> None:
    """Save a scripted module loadable with ``torch.jit.load`` (no gp-loss needed).

    One slot: the slot's loss module. Several slots: a module with one submodule per slot
    (``m.cls(logits, labels)``, ``m.reg(pred_boxes, target_boxes)``).
    """
    module = file_module(best.slots, describe(best))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still loads
            if len(best.slots) == 1:
                scripted = torch.jit.script(module.Loss())
            else:
                scripted = torch.jit.script(module.SearchedLosses())
            torch.jit.save(scripted, str(path))
    except OSError as err:
        raise GpLossError(f"cannot write {path}: {err.strerror}") from None
    finally:
        sys.modules.pop(module.__name__, None)
        Path(module.__file__).unlink(missing_ok=True)
