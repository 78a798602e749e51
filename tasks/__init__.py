"""Tasks: one module per problem (slots, data, proxy training, metrics, baselines).

``get_task(name, **options)`` builds a registered task; ``TASKS`` maps names to factories.
Tasks never import the search (``gp_loss`` talks to them only through :class:`Task`).
"""

from __future__ import annotations

from tasks import cls_digits, det_coco, inst_coco, pose_coco, seg_voc  # noqa: F401  (registration side effect)
from tasks.base import HeadProbe, ProbeBatch, Slot, Task, TrainResult
from tasks.registry import TASKS, get_task, register_task

__all__ = ["TASKS", "HeadProbe", "ProbeBatch", "Slot", "Task", "TrainResult", "get_task", "register_task"]
