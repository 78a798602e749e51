"""Faster R-CNN and Mask R-CNN whose RCNN-head classification, box-regression and mask losses
are injected.

:class:`SearchedRoIHeads` subclasses torchvision's ``RoIHeads`` and overrides ``forward`` for
training only (inference is torchvision's own); the RPN keeps its stock CE + smooth-L1. With no
injected losses it computes exactly torchvision's ``fastrcnn_loss`` and ``maskrcnn_loss`` (tested
against the stock models). The regression slot sees boxes: deltas are decoded with their
proposals inside the head, and the ground-truth box of each positive proposal is decoded from its
regression target. The mask slot sees, for each positive proposal, the mask logits of its
ground-truth class and the ground-truth mask projected onto the proposal (both M x M), exactly
the pair torchvision's ``maskrcnn_loss`` compares.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_loss, project_masks_on_boxes
from torchvision.models.detection.rpn import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign

from tasks.detection.losses import SampledRoiLoss

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SearchedRoIHeads(RoIHeads):
    """``RoIHeads`` with injectable ``cls_loss(class_logits, labels)``,
    ``reg_loss(pred_boxes, target_boxes)`` (xyxy, positive proposals only) and, with a mask
    branch, ``mask_loss(mask_logits, mask_targets)`` ((P, M, M) each, positive proposals only).

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

    def set_losses(
        self, cls_loss: LossFn | None, reg_loss: LossFn | None, mask_loss: LossFn | None = None
    ) -> None:
        """Inject the slots' losses. Kept in a plain dict, not as submodules, so the detector's
        state dict stays torchvision's."""
        self.searched_losses = {"cls": cls_loss, "reg": reg_loss, "mask": mask_loss}

    def forward(self, features, proposals, image_shapes, targets=None):
        if not self.training or self.has_keypoint():
            return super().forward(features, proposals, image_shapes, targets)
        proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        loss_classifier, loss_box_reg = self.head_losses(
            class_logits, box_regression, labels, regression_targets, proposals
        )
        losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        if self.has_mask():
            positives = [torch.where(image_labels > 0)[0] for image_labels in labels]
            mask_proposals = [p[k] for p, k in zip(proposals, positives)]
            matched = [m[k] for m, k in zip(matched_idxs, positives)]
            mask_features = self.mask_roi_pool(features, mask_proposals, image_shapes)
            mask_logits = self.mask_predictor(self.mask_head(mask_features))
            losses["loss_mask"] = self.mask_loss(
                mask_logits,
                mask_proposals,
                [t["masks"] for t in targets],
                [t["labels"] for t in targets],
                matched,
            )
        return [], losses

    def mask_loss(self, mask_logits, proposals, gt_masks, gt_labels, matched_idxs) -> torch.Tensor:
        """The mask slot on the positive proposals; torchvision's ``maskrcnn_loss`` where nothing
        is injected."""
        searched = self.searched_losses["mask"]
        if searched is None:
            return maskrcnn_loss(mask_logits, proposals, gt_masks, gt_labels, matched_idxs)
        logits, targets = mask_pairs(mask_logits, proposals, gt_masks, gt_labels, matched_idxs)
        return searched(logits, targets)

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
        if isinstance(reg, SampledRoiLoss):  # mmdetection's reduction: over all sampled RoIs
            return loss_classifier, reg(pred_boxes, target_boxes, sampled=labels.numel())
        return loss_classifier, reg(pred_boxes, target_boxes)


def mask_pairs(
    mask_logits, proposals, gt_masks, gt_labels, matched_idxs
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the mask slot compares, as torchvision's ``maskrcnn_loss`` does: each positive
    proposal's mask logits for its ground-truth class and that object's mask cropped to the
    proposal and resized to M x M (``roi_align``, so values in [0, 1]); both (P, M, M)."""
    size = mask_logits.shape[-1]
    labels = torch.cat([gt[idx] for gt, idx in zip(gt_labels, matched_idxs)])
    targets = torch.cat(
        [project_masks_on_boxes(m, p, i, size) for m, p, i in zip(gt_masks, proposals, matched_idxs)]
    )
    return mask_logits[torch.arange(labels.shape[0], device=labels.device), labels], targets


@torch.no_grad()
def head_samples(
    model: FasterRCNN, images: list[torch.Tensor], targets: list[dict]
) -> dict[str, torch.Tensor]:
    """What the RCNN head's slots see in one training forward of ``model``: the sampled
    proposals' box-head features, class logits and labels (``cls``), for the positive
    proposals their boxes, the predicted boxes and the ground-truth boxes (``reg``) and, with
    a mask branch, their mask-pooled features, mask logits and mask targets (``mask``).

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
    proposals, matched_idxs, labels, regression_targets = heads.select_training_samples(proposals, targets)
    box_features = heads.box_head(heads.box_roi_pool(features, proposals, image_list.image_sizes))
    class_logits, box_regression = heads.box_predictor(box_features)
    samples = {}
    if heads.has_mask():
        positives = [torch.where(image_labels > 0)[0] for image_labels in labels]
        mask_proposals = [p[k] for p, k in zip(proposals, positives)]
        matched = [m[k] for m, k in zip(matched_idxs, positives)]
        pooled = heads.mask_roi_pool(features, mask_proposals, image_list.image_sizes)
        logits, mask_targets = mask_pairs(
            heads.mask_predictor(heads.mask_head(pooled)),
            mask_proposals,
            [t["masks"] for t in targets],
            [t["labels"] for t in targets],
            matched,
        )
        samples = {"mask_features": pooled, "mask_logits": logits, "mask_targets": mask_targets}
    labels, proposals = torch.cat(labels), torch.cat(proposals)
    regression_targets = torch.cat(regression_targets)
    positive = torch.where(labels > 0)[0]
    deltas = box_regression.reshape(class_logits.shape[0], -1, 4)[positive, labels[positive]]
    return {
        **samples,
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


def inject(
    model: FasterRCNN,
    cls_loss: LossFn | None = None,
    reg_loss: LossFn | None = None,
    mask_loss: LossFn | None = None,
) -> FasterRCNN:
    """Give ``model`` (a Faster or Mask R-CNN) a :class:`SearchedRoIHeads` with these losses
    (in place; returns it)."""
    if not isinstance(model.roi_heads, SearchedRoIHeads):
        model.roi_heads = SearchedRoIHeads.from_stock(model.roi_heads)
    model.roi_heads.set_losses(cls_loss, reg_loss, mask_loss)
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


def _small_settings(num_classes: int, image_size: int) -> dict:
    """What the small CPU detectors share: tiny backbone, one feature map, small box head."""
    backbone = TinyBackbone()
    return dict(
        backbone=backbone,
        rpn_anchor_generator=AnchorGenerator(sizes=((8, 16, 32),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2),
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


def small_faster_rcnn(num_classes: int, image_size: int = 64) -> FasterRCNN:
    """The CPU proxy detector: tiny backbone, one feature map, small heads."""
    return inject(FasterRCNN(**_small_settings(num_classes, image_size)))


def small_mask_rcnn(num_classes: int, image_size: int = 64, mask_channels: int = 32) -> MaskRCNN:
    """The CPU instance-segmentation model: :func:`small_faster_rcnn` plus a light mask branch:
    7 x 7 RoIAlign, one 3 x 3 convolution, torchvision's deconvolution predictor, so 14 x 14
    mask logits per class. The digits are 16-30 px, so a mask cell is 1-2 px; Mask R-CNN's
    14 -> 28 branch would cost 7x more per proxy step on a CPU (docs/BENCHMARKS.md)."""
    settings = _small_settings(num_classes, image_size)
    channels = settings["backbone"].out_channels
    model = MaskRCNN(
        **settings,
        mask_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2),
        mask_head=MaskRCNNHeads(channels, [mask_channels], 1),
        mask_predictor=MaskRCNNPredictor(mask_channels, mask_channels, num_classes + 1),
    )
    return inject(model)


def resnet50_mask_rcnn(num_classes: int, weights_path: str | None = None) -> MaskRCNN:
    """``maskrcnn_resnet50_fpn`` with searched head losses, for real COCO on a GPU (see
    :func:`resnet50_faster_rcnn`)."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    return _resnet50(maskrcnn_resnet50_fpn, num_classes, weights_path)


def resnet50_faster_rcnn(num_classes: int, weights_path: str | None = None) -> FasterRCNN:
    """``fasterrcnn_resnet50_fpn`` (no download: ``weights=None, weights_backbone=None``; or a
    local state dict) with searched head losses, for real COCO on a GPU."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    return _resnet50(fasterrcnn_resnet50_fpn, num_classes, weights_path)


def _resnet50(builder: Callable[..., FasterRCNN], num_classes: int, weights_path: str | None) -> FasterRCNN:
    model = builder(weights=None, weights_backbone=None, num_classes=num_classes + 1)
    if weights_path:
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return inject(model)
