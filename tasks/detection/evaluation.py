"""COCO box AP through pycocotools' COCOeval, with labels mapped back to category ids."""

from __future__ import annotations

import contextlib
import io

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
    """A detector's outputs (``boxes`` xyxy, ``labels``, ``scores`` per image) as COCO result
    dicts (xywh boxes, category ids)."""
    results = []
    for image_id, output in zip(image_ids, outputs):
        for box, label, score in zip(output["boxes"].cpu(), output["labels"].cpu(), output["scores"].cpu()):
            x0, y0, x1, y1 = box.tolist()
            results.append(
                {
                    "image_id": image_id,
                    "category_id": dataset.category_id(int(label)),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "score": float(score),
                }
            )
    return results


def coco_box_ap(dataset: CocoDetection, results: list[dict]) -> dict[str, float]:
    """AP, AP50 and AP75 of ``results`` on ``dataset``'s images (COCOeval, iouType bbox)."""
    from pycocotools.cocoeval import COCOeval

    if not results:  # COCOeval cannot load an empty result list: nothing detected scores 0
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):
        found = dataset.coco.loadRes(results)
        evaluation = COCOeval(dataset.coco, found, iouType="bbox")
        evaluation.params.imgIds = list(dataset.image_ids)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(0.0, float(v)) for v in evaluation.stats[:3]]  # -1 means "no ground truth"
    return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2]}
