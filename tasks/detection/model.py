"""Faster R-CNN whose RCNN-head classification and box-regression losses are injected.

:class:`SearchedRoIHeads` subclasses torchvision's ``RoIHeads`` and overrides ``forward`` for
training only (inference is torchvision's own); the RPN keeps its stock CE + smooth-L1. With no
injected losses it computes exactly torchvision's ``fastrcnn_loss`` (tested against the stock
model). The regression slot sees boxes: deltas are decoded with their proposals inside the head,
and the ground-truth box of each positive proposal is decoded from its regression target.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SearchedRoIHeads(RoIHeads):
    """``RoIHeads`` with injectable ``cls_loss(class_logits, labels)`` and
    ``reg_loss(pred_boxes, target_boxes)`` (xyxy, positive proposals only).

    ``None`` keeps the stock loss of that slot. :func:`head_samples` gives the tensors the
    slots see in one training forward (the probe batches of LRP and GEC).
    """

    @classmethod
    def from_stock(cls, heads: RoIHeads) -> SearchedRoIHeads:
        """The same head (same submodules and settings), with injectable losses."""
        searched = cls.__new__(cls)
        searched.__dict__.update(heads.__dict__)
        searched.set_losses(None, None)
        return searched

    def set_losses(self, cls_loss: LossFn | None, reg_loss: LossFn | None) -> None:
        """Inject the slots' losses. Kept in a plain dict, not as submodules, so the detector's
        state dict stays torchvision's."""
        self.searched_losses = {"cls": cls_loss, "reg": reg_loss}

    def forward(self, features, proposals, image_shapes, targets=None):
        if not self.training or self.has_mask() or self.has_keypoint():
            return super().forward(features, proposals, image_shapes, targets)
        proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        loss_classifier, loss_box_reg = self.head_losses(
            class_logits, box_regression, labels, regression_targets, proposals
        )
        return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

    def head_losses(self, class_logits, box_regression, labels, regression_targets, proposals):
        """The two searched slots; torchvision's ``fastrcnn_loss`` where nothing is injected."""
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        proposals = torch.cat(proposals, dim=0)
        cls = self.searched_losses["cls"] or F.cross_entropy
        loss_classifier = cls(class_logits, labels)
        positive = torch.where(labels > 0)[0]
        labels_pos = labels[positive]
        deltas = box_regression.reshape(class_logits.shape[0], -1, 4)[positive, labels_pos]
        reg = self.searched_losses["reg"]
        if reg is None:
            loss_box_reg = F.smooth_l1_loss(deltas, regression_targets[positive], beta=1 / 9, reduction="sum")
            return loss_classifier, loss_box_reg / labels.numel()
        pred_boxes = self.box_coder.decode_single(deltas, proposals[positive])
        target_boxes = self.box_coder.decode_single(regression_targets[positive], proposals[positive])
        return loss_classifier, reg(pred_boxes, target_boxes)


@torch.no_grad()
def head_samples(
    model: FasterRCNN, images: list[torch.Tensor], targets: list[dict]
) -> dict[str, torch.Tensor]:
    """What the RCNN head's two slots see in one training forward of ``model``: the sampled
    proposals' box-head features, class logits and labels (``cls``), and for the positive
    proposals their boxes, the predicted boxes and the ground-truth boxes (``reg``).

    The same steps as ``GeneralizedRCNN.forward`` in training mode, in the same order (so the
    same random draws), stopping where the head computes its losses.
    """
    model.train()
    image_list, targets = model.transform(images, targets)
    features = model.backbone(image_list.tensors)
    if isinstance(features, torch.Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = model.rpn(image_list, features, targets)
    heads = model.roi_heads
    proposals, _, labels, regression_targets = heads.select_training_samples(proposals, targets)
    box_features = heads.box_head(heads.box_roi_pool(features, proposals, image_list.image_sizes))
    class_logits, box_regression = heads.box_predictor(box_features)
    labels, proposals = torch.cat(labels), torch.cat(proposals)
    regression_targets = torch.cat(regression_targets)
    positive = torch.where(labels > 0)[0]
    deltas = box_regression.reshape(class_logits.shape[0], -1, 4)[positive, labels[positive]]
    return {
        "box_features": box_features,
        "class_logits": class_logits,
        "labels": labels,
        "positive_proposals": proposals[positive],
        "pred_boxes": heads.box_coder.decode_single(deltas, proposals[positive]),
        "target_boxes": heads.box_coder.decode_single(regression_targets[positive], proposals[positive]),
    }


class ProposalDecoder:
    """Box deltas of fixed proposals -> xyxy boxes, as the RCNN head decodes them (the
    trainable-head LRP's ``decode`` for the ``reg`` slot)."""

    def __init__(self, proposals: torch.Tensor, box_coder) -> None:
        self.proposals = proposals
        self.box_coder = box_coder

    def __call__(self, deltas: torch.Tensor) -> torch.Tensor:
        return self.box_coder.decode_single(deltas, self.proposals)


def inject(model: FasterRCNN, cls_loss: LossFn | None = None, reg_loss: LossFn | None = None) -> FasterRCNN:
    """Give ``model`` a :class:`SearchedRoIHeads` with these losses (in place; returns it)."""
    if not isinstance(model.roi_heads, SearchedRoIHeads):
        model.roi_heads = SearchedRoIHeads.from_stock(model.roi_heads)
    model.roi_heads.set_losses(cls_loss, reg_loss)
    return model


class TinyBackbone(nn.Sequential):
    """A light CPU backbone for the 64-pixel digit scenes: stride 4, 64 channels."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__(
            nn.Conv2d(3, 32, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, channels, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.out_channels = channels


def small_faster_rcnn(num_classes: int, image_size: int = 64) -> FasterRCNN:
    """The CPU proxy detector: tiny backbone, one feature map, small heads."""
    backbone = TinyBackbone()
    anchors = AnchorGenerator(sizes=((8, 16, 32),), aspect_ratios=((0.5, 1.0, 2.0),))
    pooler = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    model = FasterRCNN(
        backbone,
        rpn_anchor_generator=anchors,
        box_roi_pool=pooler,
        box_head=TwoMLPHead(backbone.out_channels * 49, 128),
        box_predictor=FastRCNNPredictor(128, num_classes + 1),
        min_size=image_size,
        max_size=image_size,
        image_mean=[0.2, 0.2, 0.2],
        image_std=[0.25, 0.25, 0.25],
        rpn_batch_size_per_image=64,
        box_batch_size_per_image=64,
        box_detections_per_img=20,
        rpn_pre_nms_top_n_train=300,
        rpn_post_nms_top_n_train=100,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
    )
    return inject(model)


def resnet50_faster_rcnn(num_classes: int, weights_path: str | None = None) -> FasterRCNN:
    """``fasterrcnn_resnet50_fpn`` (no download: ``weights=None, weights_backbone=None``; or a
    local state dict) with searched head losses, for real COCO on a GPU."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=num_classes + 1)
    if weights_path:
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return inject(model)
