"""The six segmentation metrics of docs/architecture.md section 5, accumulated over a whole evaluation set.

All region metrics come from one confusion matrix (rows: ground truth, columns: prediction) over
the valid pixels (label != 255):

- IoU_c = TP / (TP + FP + FN); **mIoU** = mean over present classes (TP + FP + FN > 0);
- **FWIoU** = sum_c freq_c IoU_c with freq_c the ground-truth share of class c;
- **gAcc** = trace / total; **mAcc** = mean over classes in the ground truth of TP_c / GT_c.

Boundary metrics use *class boundaries*: pixels whose 3x3 neighbourhood holds another value
(the ignore value 255 counts as one, so an object outlined in void, as VOC does, has its boundary
just inside the outline). Predictions are voided where the ground truth is, so a prediction equal
to the ground truth scores 1 everywhere.

- **BIoU**: the mIoU of a second confusion matrix restricted to a band of radius 5 px (Euclidean)
  around the ground-truth boundaries (the "trimap" IoU).
- **BF1**: per class, boundary precision (predicted boundary pixels of the class within 5 px of
  its ground-truth boundary) and recall (the converse), summed over the set; F1 per class;
  mean over classes with a boundary in the ground truth or the prediction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

IGNORE = 255
METRICS = ("mIoU", "FWIoU", "gAcc", "mAcc", "BIoU", "BF1")
#: radius of the BIoU band and tolerance of BF1, in pixels
BAND_RADIUS = 5
BF_TOLERANCE = 5


def class_boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood holds another value (image edges do not count)."""
    high = ndimage.maximum_filter(labels, size=3, mode="nearest")
    low = ndimage.minimum_filter(labels, size=3, mode="nearest")
    return high != low


def within(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels at Euclidean distance <= ``radius`` from a pixel of ``mask`` (none if it is empty)."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return ndimage.distance_transform_edt(~mask) <= radius


def _confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    keep = gt != IGNORE
    index = gt[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def _mean_iou(confusion: np.ndarray) -> float:
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean()) if present.any() else 0.0


@dataclass
class SegmentationStats:
    """Sufficient statistics of the six metrics; ``add`` images, then read ``scores()``.

    Attributes:
        num_classes: C (labels 0..C-1, 255 ignored).
        confusion: (C, C) pixel counts, rows ground truth.
        band_confusion: the same inside the BIoU band.
        boundary: (4, C) counts: matched and total predicted boundary pixels, matched and total
            ground-truth boundary pixels, per class.
    """

    num_classes: int
    confusion: np.ndarray = field(init=False)
    band_confusion: np.ndarray = field(init=False)
    boundary: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        c = self.num_classes
        self.confusion = np.zeros((c, c), dtype=np.int64)
        self.band_confusion = np.zeros((c, c), dtype=np.int64)
        self.boundary = np.zeros((4, c), dtype=np.int64)

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Accumulate one image: ``pred`` and ``gt`` are (H, W) integer label maps."""
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
        gt = gt.astype(np.int64)
        pred = np.where(gt == IGNORE, IGNORE, pred.astype(np.int64))
        c = self.num_classes
        self.confusion += _confusion(gt, pred, c)
        gt_edges, pred_edges = class_boundaries(gt), class_boundaries(pred)
        band = within(gt_edges, BAND_RADIUS)
        self.band_confusion += _confusion(np.where(band, gt, IGNORE), pred, c)
        for k in np.union1d(np.unique(gt[gt_edges]), np.unique(pred[pred_edges])):
            if k == IGNORE:
                continue
            gt_k, pred_k = gt_edges & (gt == k), pred_edges & (pred == k)
            self.boundary[0, k] += int((pred_k & within(gt_k, BF_TOLERANCE)).sum())
            self.boundary[1, k] += int(pred_k.sum())
            self.boundary[2, k] += int((gt_k & within(pred_k, BF_TOLERANCE)).sum())
            self.boundary[3, k] += int(gt_k.sum())

    def scores(self) -> dict[str, float]:
        """The six metrics in [0, 1] (0 where nothing was counted)."""
        confusion = self.confusion.astype(np.float64)
        total = confusion.sum()
        tp = np.diag(confusion)
        gt_count = confusion.sum(1)
        union = gt_count + confusion.sum(0) - tp
        iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
        in_gt = gt_count > 0
        matched_pred, total_pred, matched_gt, total_gt = self.boundary.astype(np.float64)
        precision = np.divide(matched_pred, total_pred, out=np.zeros_like(total_pred), where=total_pred > 0)
        recall = np.divide(matched_gt, total_gt, out=np.zeros_like(total_gt), where=total_gt > 0)
        f1 = np.divide(
            2 * precision * recall,
            precision + recall,
            out=np.zeros_like(precision),
            where=precision + recall > 0,
        )
        with_boundary = (total_pred > 0) | (total_gt > 0)
        return {
            "mIoU": _mean_iou(self.confusion),
            "FWIoU": float((gt_count / total * iou).sum()) if total else 0.0,
            "gAcc": float(tp.sum() / total) if total else 0.0,
            "mAcc": float((tp[in_gt] / gt_count[in_gt]).mean()) if in_gt.any() else 0.0,
            "BIoU": _mean_iou(self.band_confusion),
            "BF1": float(f1[with_boundary].mean()) if with_boundary.any() else 0.0,
        }


def evaluate(preds, gts, num_classes: int) -> dict[str, float]:
    """The six metrics of paired (H, W) label maps over a whole set."""
    stats = SegmentationStats(num_classes)
    for pred, gt in zip(preds, gts, strict=True):
        stats.add(np.asarray(pred), np.asarray(gt))
    return stats.scores()


def per_image(metric: str, preds: np.ndarray, gts: np.ndarray, num_classes: int) -> np.ndarray:
    """``metric`` of each image on its own: (B,) for (B, H, W) label maps (the LRP's xi)."""
    if metric not in METRICS:
        raise ValueError(f"unknown segmentation metric {metric!r}; known: {', '.join(METRICS)}")
    out = np.empty(len(preds))
    for b, (pred, gt) in enumerate(zip(preds, gts, strict=True)):
        stats = SegmentationStats(num_classes)
        stats.add(pred, gt)
        out[b] = stats.scores()[metric]
    return out
