"""inst_coco: Mask R-CNN whose RCNN-head classification, box-regression and mask losses are searched.

The paper's COCO instance-segmentation experiment (five losses: RPN cls and reg keep CE +
smooth-L1; RCNN cls, reg and mask are searched). Three slots: ``cls`` (softmax_onehot over the
sampled proposals) and ``reg`` (box_iou_areas of each positive proposal) exactly as det_coco's,
and ``mask`` (sigmoid_binary: each positive proposal's mask logits for its ground-truth class
against the ground-truth mask projected onto it, M x M: 28 for Mask R-CNN's ResNet-50 model, 14
for the small CPU model; spatial, so pooling primitives apply).
Metrics through pycocotools' COCOeval: mask AP (default), mask AP50, mask AP75 (``segm``) and
box AP (``bbox``).

Everything else is det_coco's (:class:`tasks.det_coco.DetCoco`): the COCO loader (with
``masks``), the injected ``RoIHeads`` (extended to the mask branch), the cached-trunk proxy
(fresh box *and* mask heads on a frozen Mask R-CNN trunk), end-to-end final trainings, real
COCO 2017 through ``--data-root``. Built-in data: the digit scenes in the COCO 2017 instances
layout with stroke-exact polygons, and in a fifth of the images a crowd region (small digits of
one class, ``iscrowd`` 1, RLE) that the targets leave out and COCOeval ignores.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from gp_loss.core.baselines import get_baseline
from tasks.base import HeadProbe, ProbeBatch, Slot
from tasks.data.cache import builtin
from tasks.data.digit_scenes import DigitScenes
from tasks.data.layouts import write_coco
from tasks.det_coco import BUILTIN_COUNTS, DetCoco
from tasks.detection.coco_data import CocoDetection
from tasks.detection.evaluation import coco_mask_ap
from tasks.detection.losses import BOX_LOSSES
from tasks.registry import register_task

#: Share of built-in images that hold a crowd region.
CROWD_RATE = 0.2

CE = get_baseline("cross_entropy").tree
BCE = get_baseline("bce").tree


def builtin_coco_instances(seed: int = 0) -> Path:
    """The built-in digit scenes (with crowd regions) in the COCO instances layout."""
    scenes = DigitScenes(seed=seed, crowd_rate=CROWD_RATE)
    return builtin(
        f"digit_scenes_coco_instances_v1_seed{seed}",
        BUILTIN_COUNTS,
        lambda root, n: write_coco(root, scenes, n),
    )


def mask_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-RoI IoU of the predicted mask (logit > 0) with the target (>= 0.5), (P,); 1 where
    both are empty."""
    predicted = (logits > 0).flatten(1)
    target = (targets >= 0.5).flatten(1)
    inter = (predicted & target).sum(dim=1).float()
    union = (predicted | target).sum(dim=1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def dice_mask_loss(
    mask_logits: torch.Tensor, mask_targets: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """The soft Dice loss of each RoI's mask, averaged over RoIs: 1 - (2 sum(p t) + s) /
    (sum(p) + sum(t) + s) with p the foreground probabilities (V-Net's Dice on sums, smoothed
    by ``s`` so an empty target has a finite loss); 0 with a graph for no RoIs."""
    if mask_logits.shape[0] == 0:
        return mask_logits.sum() * 0.0
    p = torch.sigmoid(mask_logits).flatten(1)
    t = mask_targets.flatten(1).to(p.dtype)
    dice = (2 * (p * t).sum(dim=1) + smooth) / (p.sum(dim=1) + t.sum(dim=1) + smooth)
    return (1 - dice).mean()


class MaskUpsampler:
    """The mask slot's head-protocol ``decode``: one channel of logits at the pooled RoI size,
    resized bilinearly to the mask size (as Mask R-CNN's predictor doubles it)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return F.interpolate(logits, size=(self.size, self.size), mode="bilinear", align_corners=False)[:, 0]


@register_task("inst_coco")
class InstCoco(DetCoco):
    """Instance segmentation on COCO-layout data with searched RCNN cls, box and mask losses."""

    models: ClassVar[dict[str, str]] = {
        "small": "small_mask_rcnn",
        "maskrcnn_resnet50_fpn": "resnet50_mask_rcnn",
    }
    with_masks: ClassVar[bool] = True
    slots = (
        *DetCoco.slots,
        Slot("mask", "sigmoid_binary", spatial=True, probe_metric="mask IoU of each positive RoI"),
    )
    metrics = ("mask_AP", "mask_AP50", "mask_AP75", "box_AP")
    lrp_defaults: ClassVar[dict] = {
        "shared": {**DetCoco.lrp_defaults["shared"], "eta": {"cls": 0.2, "reg": 0.1, "mask": 0.25}},
        "paper": {**DetCoco.lrp_defaults["paper"], "eta": {"cls": 0.3, "reg": 0.05, "mask": 0.05}},
    }
    default_baseline = "ce+smooth_l1+bce"
    #: the tree forms (mean-of-tree scale: CE / (C + 1), the BCE tree is BCE / 2)
    baselines: ClassVar[dict[str, dict[str, str]]] = {
        "tree:ce+iou+bce": {"cls": CE, "reg": get_baseline("iou").tree, "mask": BCE},
        "tree:ce+giou+bce": {"cls": CE, "reg": get_baseline("giou").tree, "mask": BCE},
        # at the references' weights: F.cross_entropy, mmdetection's GIoU weight 10, and
        # C * the BCE tree (C = 2: foreground and background) is F.binary_cross_entropy itself
        "tree:weighted:ce+giou+bce": {
            "cls": f"C * {CE}",
            "reg": f"10 * {get_baseline('giou').tree}",
            "mask": f"C * {BCE}",
        },
    }
    anchor_baseline = "tree:weighted:ce+giou+bce"
    #: the references: ``None`` keeps torchvision's stock loss of that slot (the stock setting
    #: is CE + smooth-L1 + mask BCE); mmdetection's Mask R-CNN IoU-loss configs swap the box
    #: loss (:mod:`tasks.detection.losses`); Dice replaces the mask slot's BCE
    reference_losses: ClassVar[dict] = {
        "ce+smooth_l1+bce": lambda task: {"cls": F.cross_entropy, "reg": None, "mask": None},
        **{
            f"ce+{name}+bce": (lambda task, box=box: {"cls": F.cross_entropy, "reg": box(), "mask": None})
            for name, box in BOX_LOSSES.items()
        },
        "ce+smooth_l1+dice": lambda task: {"cls": F.cross_entropy, "reg": None, "mask": dice_mask_loss},
    }

    def builtin_root(self) -> Path:
        return builtin_coco_instances()

    def score(self, dataset: CocoDetection, results: list[dict]) -> dict[str, float]:
        return coco_mask_ap(dataset, results)

    def trunk_settings(self) -> dict[str, object]:
        # a Mask R-CNN trunk: never mistaken for det_coco's Faster R-CNN of the same settings
        return {**super().trunk_settings(), "architecture": "mask_rcnn"}

    # -- LRP / GEC -----------------------------------------------------------------------------
    def probe_batches(self) -> dict[str, ProbeBatch]:
        probe = self._probe(self.probe_images)
        return {
            **super().probe_batches(),
            "mask": ProbeBatch(probe["mask_logits"], probe["mask_targets"]),
        }

    def probe_heads(self) -> dict[str, HeadProbe]:
        """det_coco's cls and reg probes, and for ``mask`` the positive proposals' mask-branch
        features (RoIAlign), a one-channel head upsampled to the size of the mask targets."""
        probe = self._probe(self.head_probe_images)
        size = int(probe["mask_targets"].shape[-1])
        mask = HeadProbe(probe["mask_features"], probe["mask_targets"], 1, MaskUpsampler(size))
        return {**super().probe_heads(), "mask": mask}

    def probe_metric(self, slot: str, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """det_coco's for ``cls`` and ``reg``; ``mask``: the IoU of each probe RoI's mask."""
        if slot == "mask":
            return mask_iou(predictions, targets)
        return super().probe_metric(slot, predictions, targets)
