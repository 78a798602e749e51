"""``box_iou_areas``: paired boxes as the areas of their intersection, union and enclosing box."""

from __future__ import annotations

import math
from typing import ClassVar, List, Tuple  # noqa: UP035  (TorchScript needs typing generics)

import torch

from gp_loss.adapters.base import Adapter, register_adapter
from gp_loss.core.baselines import get_baseline
from primitives.numerics import MAX_MAGNITUDE

Tensor = torch.Tensor


def box_iou_areas(pred_boxes: Tensor, target_boxes: Tensor) -> Tuple[List[Tensor], Tensor]:  # noqa: UP006
    """Areas of intersection, union and smallest enclosing box of paired xyxy boxes.

    Args:
        pred_boxes: (R, 4) predicted boxes, (x1, y1, x2, y2).
        target_boxes: (R, 4) ground-truth boxes.

    Returns ``[inter, union, enclose]``, each (R, 1, 1, 1), and an all-true mask. Areas saturate
    at MAX_MAGNITUDE, as the primitives' products do, so that any finite coordinates give finite
    inputs.
    """
    pw = (pred_boxes[:, 2] - pred_boxes[:, 0]).clamp(min=0)
    ph = (pred_boxes[:, 3] - pred_boxes[:, 1]).clamp(min=0)
    tw = (target_boxes[:, 2] - target_boxes[:, 0]).clamp(min=0)
    th = (target_boxes[:, 3] - target_boxes[:, 1]).clamp(min=0)
    lt = torch.max(pred_boxes[:, :2], target_boxes[:, :2])
    rb = torch.min(pred_boxes[:, 2:], target_boxes[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = torch.clamp(wh[:, 0] * wh[:, 1], max=MAX_MAGNITUDE)
    union = torch.clamp(
        torch.clamp(pw * ph, max=MAX_MAGNITUDE) + torch.clamp(tw * th, max=MAX_MAGNITUDE) - inter,
        0.0,
        MAX_MAGNITUDE,
    )
    enclose_wh = (
        torch.max(pred_boxes[:, 2:], target_boxes[:, 2:]) - torch.min(pred_boxes[:, :2], target_boxes[:, :2])
    ).clamp(min=0)
    enclose = torch.clamp(enclose_wh[:, 0] * enclose_wh[:, 1], max=MAX_MAGNITUDE)
    shape = [pred_boxes.shape[0], 1, 1, 1]
    valid = torch.ones(shape, dtype=torch.bool, device=pred_boxes.device)
    return [inter.reshape(shape), union.reshape(shape), enclose.reshape(shape)], valid


@register_adapter
class BoxIouAreas(Adapter):
    """Box regression: ``loss(pred_boxes, target_boxes)`` (xyxy, paired rows)."""

    name = "box_iou_areas"
    inputs = ("inter", "union", "enclose")
    # every area depends on both boxes, so any one will do (the IoU loss uses no ``enclose``)
    required_inputs = (frozenset({"inter", "union", "enclose"}),)
    ranges: ClassVar[dict] = {"inter": (0.0, math.inf), "union": (0.0, math.inf), "enclose": (0.0, math.inf)}
    # unions and enclosing areas are positive; an intersection can be 0
    symbols: ClassVar[dict] = {
        "inter": ("I", {"nonnegative": True}),
        "union": ("U", {"positive": True}),
        "enclose": ("E", {"positive": True}),
    }
    arguments = ("pred_boxes", "target_boxes")
    calibration: ClassVar[dict] = {
        "good": {
            "iou": get_baseline("iou").tree,
            "giou": get_baseline("giou").tree,
            "-log IoU": "neg(log(mul(inter, inv(union))))",
        },
        "bad": {
            "constant-like: union/union": "mul(union, inv(union))",
            "maximises overlap loss: inter/union": "mul(inter, inv(union))",
            "grows boxes: -enclose": "neg(enclose)",
        },
        # pass the paper's protocol yet train boxes to ~0 AP (measured: issue 18)
        "collapsing": {
            "grows boxes: -log(inter)": "log(neg(inter))",
            "grows boxes: 1/inter": "inv(inter)",
        },
    }
    words: ClassVar[dict] = {
        "inter": "the intersection area",
        "union": "the union area",
        "enclose": "the smallest enclosing box's area",
    }
    function = staticmethod(box_iou_areas)

    def ordering_probes(self, prediction: Tensor, target: Tensor) -> dict[str, Tensor]:
        """None apply to boxes: the shared protocol's head judges alone (no class ordering)."""
        return {}

    def example(self, generator: torch.Generator, spatial: bool) -> tuple[Tensor, Tensor]:
        corner = 50 * torch.rand(6, 2, generator=generator)
        target = torch.cat([corner, corner + 1 + 30 * torch.rand(6, 2, generator=generator)], dim=1)
        return target + 4 * torch.randn(6, 4, generator=generator), target

    def curve(self):
        def point(iou: float) -> tuple[Tensor, Tensor]:  # a box of the target's height, iou of its width
            return torch.tensor([[0.0, 0.0, 10.0 * iou, 10.0]]), torch.tensor([[0.0, 0.0, 10.0, 10.0]])

        return "IoU of the predicted box with its target", torch.linspace(0.02, 1.0, 99), point

    def edge_cases(self, generator: torch.Generator, spatial: bool) -> dict[str, tuple[Tensor, Tensor]]:
        pred, target = self.example(generator, spatial)
        point = torch.cat([target[:, :2], target[:, :2]], dim=1)
        return {
            "perfect boxes (inter = union)": (target.clone(), target),
            "disjoint boxes (inter 0)": (target + 1000, target),
            "zero-area predictions": (point, target),
            "huge boxes (coordinates near 1e4, a 10k-pixel image)": (pred * 200, target * 200),
            "an empty set of boxes": (pred[:0], target[:0]),
        }
