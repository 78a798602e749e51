"""A tiny two-slot task for testing the search engine's multi-slot paths without a detector.

Slots ``cls`` (softmax_onehot) and ``reg`` (box_iou_areas) on synthetic probe batches; the
"proxy training" optimises free logits and boxes with the candidate losses for a few steps and
reports accuracy and mean IoU. Real enough to exercise every stage, fast enough for unit tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import torch

from gp_loss.core.baselines import get_baseline
from gp_loss.core.events import DIVERGED, TRAINED
from tasks.base import LossFn, ProbeBatch, Slot, Task, TrainResult
from tasks.registry import TASKS, register_task


def _boxes(generator: torch.Generator, n: int) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * 20
    return torch.cat([xy, xy + 2 + torch.rand(n, 2, generator=generator) * 8], dim=1)


class TwoSlotToy(Task):
    """Classification + box regression on free parameters (no network).

    Args:
        sleep: seconds each proxy training sleeps (to test timeouts and lost workers).
        pid_dir: if set, each proxy training first writes a file named after its process id.
    """

    name = "two_slot_toy"
    slots = (
        Slot("cls", "softmax_onehot", spatial=False, probe_metric="accuracy"),
        Slot("reg", "box_iou_areas", spatial=False, probe_metric="iou"),
    )
    metrics = ("score",)
    lrp_defaults: ClassVar[dict[str, float]] = {"steps": 30, "lr": 0.1, "eta": 0.05}
    baselines: ClassVar[dict[str, dict[str, str]]] = {
        "ce+giou": {"cls": get_baseline("cross_entropy").tree, "reg": get_baseline("giou").tree}
    }

    def __init__(
        self,
        metric: str | None = None,
        seed: int = 0,
        device: str = "cpu",
        sleep: float = 0.0,
        pid_dir: str | None = None,
    ) -> None:
        super().__init__(metric, seed, device)
        self.sleep = sleep
        self.pid_dir = pid_dir

    def probe_batches(self) -> dict[str, ProbeBatch]:
        gen = torch.Generator().manual_seed(self.seed)
        cls = ProbeBatch(0.1 * torch.randn(8, 5, generator=gen), torch.randint(0, 5, (8,), generator=gen))
        gen = torch.Generator().manual_seed(self.seed + 1)
        target = _boxes(gen, 8)
        return {"cls": cls, "reg": ProbeBatch(target + 3 * torch.randn(8, 4, generator=gen), target)}

    def probe_metric(self, slot: str, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if slot == "cls":
            return (predictions.argmax(1) == targets).float()
        from torchvision.ops import box_iou

        fixed = torch.cat([predictions[:, :2], torch.max(predictions[:, 2:], predictions[:, :2])], dim=1)
        return box_iou(fixed, targets).diagonal()

    def proxy_train(self, losses: Mapping[str, LossFn], *, stop_invalid: bool = True) -> TrainResult:
        if self.pid_dir:
            Path(self.pid_dir, f"{os.getpid()}.{time.monotonic_ns()}").write_text(str(os.getpid()))
        time.sleep(self.sleep)
        score = 0.0
        for slot in ("cls", "reg"):
            batch = self.probe_batch(slot)
            pred = batch.predictions.clone().requires_grad_(True)
            optimizer = torch.optim.SGD([pred], lr=0.5)
            for step in range(20):
                optimizer.zero_grad()
                value = losses[slot](pred, batch.targets)
                if stop_invalid and not torch.isfinite(value):
                    return TrainResult(DIVERGED, {}, step)
                if value.requires_grad:
                    value.backward()
                    optimizer.step()
            with torch.no_grad():
                score += float(self.probe_metric(slot, pred, batch.targets).mean()) / 2
        return TrainResult(TRAINED, {"score": score}, 40)


if "two_slot_toy" not in TASKS:  # importable twice (tests, workers) without a duplicate error
    register_task("two_slot_toy")(TwoSlotToy)
