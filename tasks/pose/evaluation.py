"""COCO keypoint AP (OKS) through pycocotools' COCOeval, and OKS itself for the probe metric."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

#: COCO's per-keypoint OKS sigmas (pycocotools' ``Params.kpt_oks_sigmas``), in COCO's order.
COCO_SIGMAS = (
    np.array(
        [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
    )
    / 10.0
)


def oks(
    predicted: torch.Tensor, truth: torch.Tensor, labelled: torch.Tensor, area: torch.Tensor
) -> torch.Tensor:
    """Object keypoint similarity of each person, as COCOeval computes it: the mean over the
    labelled keypoints of exp(-d^2 / (2 area (2 sigma)^2)).

    Args:
        predicted, truth: (N, K, 2) keypoint positions.
        labelled: (N, K) bool, the keypoints with a label.
        area: (N,) each person's area (s^2), in the positions' units squared.

    Returns (N,); a person without labelled keypoints scores 0.
    """
    sigmas = torch.as_tensor(COCO_SIGMAS, dtype=predicted.dtype, device=predicted.device)
    d2 = ((predicted - truth) ** 2).sum(dim=2)
    e = d2 / (2 * area[:, None] * (2 * sigmas) ** 2 + 1e-12)
    similarity = torch.where(labelled, torch.exp(-e), torch.zeros_like(e)).sum(dim=1)
    return similarity / labelled.sum(dim=1).clamp(min=1)


def coco_keypoint_ap(coco, image_ids: list[int], results: list[dict]) -> dict[str, float]:
    """AP, AP50 and AP75 of keypoint ``results`` (``image_id``, ``category_id``, ``keypoints``
    as 17 (x, y, v) triples, ``score``) on ``image_ids`` of the ground truth ``coco``
    (COCOeval, iouType keypoints, COCO's sigmas; people with no labelled keypoint are ignored)."""
    from pycocotools.cocoeval import COCOeval

    if not results:  # COCOeval cannot load an empty result list: nothing predicted scores 0
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        found = coco.loadRes(results)
        evaluation = COCOeval(coco, found, iouType="keypoints")
        evaluation.params.imgIds = list(image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(0.0, float(v)) for v in evaluation.stats[:3]]  # -1: no ground truth
    return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2]}
