"""det_coco's and inst_coco's cheap proxy: a frozen trunk trained once, fresh heads trained on it.

The searched slots only train the RCNN heads. So the proxy trains the trunk (backbone + RPN
+ heads) once with the stock losses, keeps it on disk under a key of everything that shapes it
(data, model, seed, steps, batch size, learning rate), and each proxy training then trains
freshly initialised heads (``box_head`` + ``box_predictor``, and ``mask_head`` +
``mask_predictor`` for a Mask R-CNN) with the candidate's losses on the frozen trunk's
features. Those features do not change between candidates: they are pooled once per process
for every proposal of every proxy image, with the proposals' matched labels and regression
targets (as ``RoIHeads.select_training_samples`` assigns them), and kept in memory within a
stated bound; each step only samples proposals with torchvision's own sampler and runs the
heads. The mask branch pools its RoIs of the sampled positives from the image's cached
feature maps at each step (a feature map is far smaller than every proposal's pooled RoI) and
projects the ground-truth masks onto them as torchvision does.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.roi_heads import maskrcnn_inference

from tasks.detection.coco_data import CocoDetection, collate, to_device
from tasks.detection.model import LossFn, SearchedRoIHeads


@dataclass
class ImageRois:
    """One image's proposals as the frozen trunk sees them.

    Attributes:
        pooled: RoI-pooled features of every proposal (P, C, 7, 7), float16 to halve memory.
        proposals: the proposals (P, 4), xyxy in the resized image (ground-truth boxes appended
            for training images, as torchvision does).
        labels: each proposal's matched class (0: background), training images only.
        regression_targets: each proposal's encoded box target, training images only.
        image_size: the resized image's (H, W); original_size: the image's own.
        image_id: the COCO image id.
        features: a Mask R-CNN trunk's feature maps of this image (1, C, h, w) per level,
            float16, for the mask branch's RoIs.
        matched: each proposal's matched ground-truth object (training images of a Mask R-CNN).
        gt_masks: the ground-truth masks (K, H, W) in the resized image; gt_labels: their classes.
    """

    pooled: torch.Tensor
    proposals: torch.Tensor
    labels: torch.Tensor | None
    regression_targets: torch.Tensor | None
    image_size: tuple[int, int]
    original_size: tuple[int, int]
    image_id: int
    features: dict[str, torch.Tensor] | None = None
    matched: torch.Tensor | None = None
    gt_masks: torch.Tensor | None = None
    gt_labels: torch.Tensor | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by this image's tensors."""
        tensors = [self.pooled, self.proposals, self.labels, self.regression_targets, self.matched]
        tensors += [self.gt_masks, self.gt_labels, *(self.features or {}).values()]
        return sum(t.numel() * t.element_size() for t in tensors if t is not None)

    def mask_features(self) -> dict[str, torch.Tensor]:
        """The feature maps in float32, for ``mask_roi_pool``."""
        assert self.features is not None, "a Faster R-CNN trunk keeps no feature maps"
        return {name: f.float() for name, f in self.features.items()}


@torch.no_grad()
def image_rois(
    model: FasterRCNN, images: list[torch.Tensor], targets: list[dict], training: bool
) -> list[ImageRois]:
    """The trunk's proposals of a batch, pooled, with their assigned targets when ``training``."""
    original = [tuple(image.shape[-2:]) for image in images]
    ids = [t["image_id"] for t in targets]
    heads: SearchedRoIHeads = model.roi_heads
    keys = ("boxes", "labels", "masks") if heads.has_mask() and training else ("boxes", "labels")
    image_list, targets = model.transform(images, [{k: t[k] for k in keys} for t in targets])
    features = model.backbone(image_list.tensors)
    if isinstance(features, torch.Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = model.rpn(image_list, features)
    labels = regression = matched = [None] * len(proposals)
    if training:
        boxes = [t["boxes"] for t in targets]
        proposals = heads.add_gt_proposals(proposals, boxes)
        # an image without objects is all background, matched to a dummy box (as torchvision does)
        boxes = [b if b.numel() else torch.zeros((1, 4), dtype=b.dtype, device=b.device) for b in boxes]
        given = [t["labels"] if t["labels"].numel() else torch.zeros(1, dtype=torch.int64) for t in targets]
        matched, labels = heads.assign_targets_to_proposals(proposals, boxes, given)
        regression = heads.box_coder.encode([b[m] for b, m in zip(boxes, matched)], proposals)
    pooled = heads.box_roi_pool(features, proposals, image_list.image_sizes)
    pooled = pooled.to(torch.float16).split([len(p) for p in proposals])
    rois = []
    for i in range(len(proposals)):
        image = ImageRois(
            pooled[i],
            proposals[i],
            labels[i],
            regression[i],
            tuple(image_list.image_sizes[i]),
            original[i],
            ids[i],
        )
        if heads.has_mask():
            image.features = {name: f[i : i + 1].to(torch.float16) for name, f in features.items()}
            if training:
                image.matched = matched[i]
                image.gt_masks, image.gt_labels = targets[i]["masks"], targets[i]["labels"]
        rois.append(image)
    return rois


class RoiCache:
    """Every image's :class:`ImageRois`, computed in batches and kept in memory when the whole
    split fits in ``bound_mb`` (estimated from the first batch); otherwise each image is
    computed again when asked for (the trunk forward only: no gradient)."""

    def __init__(
        self,
        model: FasterRCNN,
        dataset: CocoDetection,
        device: torch.device,
        *,
        training: bool,
        bound_mb: float,
        batch_size: int = 16,
    ) -> None:
        self.model, self.dataset, self.device, self.training = model, dataset, device, training
        self.batch_size = batch_size
        first = self._compute(range(min(batch_size, len(dataset))))
        per_image = sum(r.nbytes for r in first) / max(1, len(first))
        self.nbytes = per_image * len(dataset)
        self.cached: list[ImageRois] | None = None
        if self.nbytes <= bound_mb * 2**20:
            self.cached = first
            for start in range(len(first), len(dataset), batch_size):
                self.cached += self._compute(range(start, min(start + batch_size, len(dataset))))

    def _compute(self, indices: range | list[int]) -> list[ImageRois]:
        images, targets = to_device(*collate([self.dataset[i] for i in indices]), self.device)
        return image_rois(self.model, images, targets, self.training)

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, indices: list[int]) -> list[ImageRois]:
        """The RoIs of these images."""
        if self.cached is not None:
            return [self.cached[i] for i in indices]
        return self._compute(indices)


def fresh_head(
    trunk: FasterRCNN, cls_loss: LossFn | None, reg_loss: LossFn | None, mask_loss: LossFn | None = None
) -> SearchedRoIHeads:
    """A copy of the trunk's RoI heads with a freshly initialised, trainable box head and
    predictor (and mask head and predictor, for a Mask R-CNN; seeded by the caller) and the
    candidate's losses."""
    heads = copy.deepcopy(trunk.roi_heads)
    parts = [heads.box_head, heads.box_predictor]
    if heads.has_mask():
        parts += [heads.mask_head, heads.mask_predictor]
    for part in parts:
        for module in part.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        for parameter in part.parameters():
            parameter.requires_grad_(True)
    heads.set_losses(cls_loss, reg_loss, mask_loss)
    return heads.train()


def head_step(heads: SearchedRoIHeads, rois: list[ImageRois]) -> dict[str, torch.Tensor]:
    """One training step's losses of the box head on these images: torchvision's sampler picks
    the proposals (``box_batch_size_per_image``, its positive fraction), the head scores them."""
    positive, negative = heads.fg_bg_sampler([r.labels for r in rois])
    picks = [torch.where(p | n)[0] for p, n in zip(positive, negative)]
    pooled = torch.cat([r.pooled[k] for r, k in zip(rois, picks)]).float()
    class_logits, box_regression = heads.box_predictor(heads.box_head(pooled))
    loss_classifier, loss_box_reg = heads.head_losses(
        class_logits,
        box_regression,
        [r.labels[k] for r, k in zip(rois, picks)],
        [r.regression_targets[k] for r, k in zip(rois, picks)],
        [r.proposals[k] for r, k in zip(rois, picks)],
    )
    losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
    if heads.has_mask():  # the sampled positives, in the order torchvision's forward takes them
        positives = [k[r.labels[k] > 0] for r, k in zip(rois, picks)]
        proposals = [r.proposals[k] for r, k in zip(rois, positives)]
        mask_logits = heads.mask_predictor(heads.mask_head(_mask_pool(heads, rois, proposals)))
        losses["loss_mask"] = heads.mask_loss(
            mask_logits,
            proposals,
            [r.gt_masks for r in rois],
            [r.gt_labels for r in rois],
            [r.matched[k] for r, k in zip(rois, positives)],
        )
    return losses


def _mask_pool(heads: SearchedRoIHeads, rois: list[ImageRois], boxes: list[torch.Tensor]) -> torch.Tensor:
    """The mask branch's RoIs of ``boxes`` (one tensor per image), pooled from each image's
    cached feature maps."""
    pooled = [heads.mask_roi_pool(r.mask_features(), [b], [r.image_size]) for r, b in zip(rois, boxes)]
    return torch.cat(pooled)


@torch.no_grad()
def head_detections(heads: SearchedRoIHeads, trunk: FasterRCNN, rois: list[ImageRois]) -> list[dict]:
    """The detector's inference outputs on these images with ``heads`` as its box head
    (torchvision's ``postprocess_detections`` and resizing back to the original size)."""
    heads.eval()
    pooled = torch.cat([r.pooled for r in rois]).float()
    class_logits, box_regression = heads.box_predictor(heads.box_head(pooled))
    sizes = [r.image_size for r in rois]
    boxes, scores, labels = heads.postprocess_detections(
        class_logits, box_regression, [r.proposals for r in rois], sizes
    )
    outputs = [{"boxes": b, "scores": s, "labels": label} for b, s, label in zip(boxes, scores, labels)]
    if heads.has_mask():
        mask_logits = heads.mask_predictor(heads.mask_head(_mask_pool(heads, rois, boxes)))
        for output, probabilities in zip(outputs, maskrcnn_inference(mask_logits, labels)):
            output["masks"] = probabilities
    return trunk.transform.postprocess(outputs, sizes, [r.original_size for r in rois])
