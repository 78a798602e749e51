"""COCO box and mask AP through pycocotools' COCOeval, with labels mapped back to category ids."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

from tasks.detection.coco_data import CocoDetection, collate


def detections(model, dataset: CocoDetection, device: torch.device, batch_size: int = 16) -> list[dict]:
    """Run ``model`` (eval mode) over ``dataset``: COCO result dicts (xywh, category ids)."""
    model.eval()
    results = []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            images, targets = collate(
                [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            )
            outputs = model([image.to(device) for image in images])
            results += coco_results(dataset, [t["image_id"] for t in targets], outputs)
    return results


def coco_results(dataset: CocoDetection, image_ids: list[int], outputs: list[dict]) -> list[dict]:
    """A detector's outputs (``boxes`` xyxy, ``labels``, ``scores`` per image; ``masks`` (D, 1,
    H, W) probabilities for an instance-segmentation model) as COCO result dicts (xywh boxes,
    category ids; masks thresholded at 0.5 as RLE ``segmentation``)."""
    from pycocotools import mask as mask_utils

    results = []
    for image_id, output in zip(image_ids, outputs):
        masks = output.get("masks")
        for k, (box, label, score) in enumerate(
            zip(output["boxes"].cpu(), output["labels"].cpu(), output["scores"].cpu())
        ):
            x0, y0, x1, y1 = box.tolist()
            result = {
                "image_id": image_id,
                "category_id": dataset.category_id(int(label)),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "score": float(score),
            }
            if masks is not None:
                binary = (masks[k, 0] > 0.5).cpu().numpy().astype(np.uint8)
                rle = mask_utils.encode(np.asfortranarray(binary))
                result["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
            results.append(result)
    return results


def coco_box_ap(dataset: CocoDetection, results: list[dict]) -> dict[str, float]:
    """AP, AP50 and AP75 of ``results`` on ``dataset``'s images (COCOeval, iouType bbox)."""
    return coco_ap(dataset, results, "bbox")


def coco_mask_ap(dataset: CocoDetection, results: list[dict]) -> dict[str, float]:
    """Mask AP, AP50, AP75 (``iouType="segm"``) and box AP of instance-segmentation
    ``results``: ``mask_AP``, ``mask_AP50``, ``mask_AP75``, ``box_AP``."""
    masks = coco_ap(dataset, results, "segm")
    return {**{f"mask_{k}": v for k, v in masks.items()}, "box_AP": coco_ap(dataset, results, "bbox")["AP"]}


def coco_ap(dataset: CocoDetection, results: list[dict], iou_type: str) -> dict[str, float]:
    """AP, AP50 and AP75 of ``results`` on ``dataset``'s images (COCOeval with ``iou_type``
    ``bbox`` or ``segm``).

    Each evaluation sees only its own geometry, as Detectron2 passes them: given a box,
    ``loadRes`` takes a result's area from the box, which would sort masks into COCO's
    small / medium / large by their boxes.
    """
    from pycocotools.cocoeval import COCOeval

    drop = "segmentation" if iou_type == "bbox" else "bbox"
    results = [{k: v for k, v in r.items() if k != drop} for r in results]
    if not results:  # COCOeval cannot load an empty result list: nothing detected scores 0
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        found = dataset.coco.loadRes(results)
        evaluation = COCOeval(dataset.coco, found, iouType=iou_type)
        evaluation.params.imgIds = list(dataset.image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(0.0, float(v)) for v in evaluation.stats[:3]]  # -1 means "no ground truth"
    return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2]}
