"""A COCO 2017 instances dataset read through pycocotools: real COCO and the built-in scenes.

Category ids are not contiguous in COCO (1-90 with gaps); the model sees labels 1..K
(0 = background) and :meth:`CocoDetection.category_id` maps them back for COCOeval. Crowd
regions and degenerate boxes are left out of the targets (COCOeval still sees crowds, as
regions where detections are neither rewarded nor punished); images without annotations are
kept (empty targets), since torchvision's detectors train on them as pure background. With
``masks=True`` each target also holds the objects' masks, rasterised from their polygons or
RLE at the image's size; an object whose mask is empty there (a polygon thinner than a pixel)
is left out of the targets too, since a Mask R-CNN cannot be taught a mask without pixels, and
counted in :attr:`CocoDetection.empty_masks`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gp_loss.core.errors import GpLossError


class CocoDetection(torch.utils.data.Dataset):
    """``root/{split}2017/`` images and ``root/annotations/instances_{split}2017.json``.

    Items are ``(image, target)``: a float (3, H, W) tensor in [0, 1] and a dict with ``boxes``
    (K, 4) xyxy float32, ``labels`` (K,) int64 in 1..num_classes, ``image_id`` (int) and, with
    ``masks``, ``masks`` (K, H, W) uint8.
    """

    def __init__(
        self, root: str | Path, split: str, image_ids: list[int] | None = None, *, masks: bool = False
    ) -> None:
        from pycocotools.coco import COCO

        self.root = Path(root)
        self.split = split
        self.folder = self.root / f"{split}2017"
        annotations = self.root / "annotations" / f"instances_{split}2017.json"
        if not annotations.is_file():
            raise GpLossError(f"{self.root} is not a COCO 2017 tree: missing annotations/{annotations.name}")
        if not self.folder.is_dir():
            raise GpLossError(f"{self.root} is not a COCO 2017 tree: missing {self.folder.name}/")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                self.coco = COCO(str(annotations))
        except (ValueError, KeyError, TypeError) as err:
            raise GpLossError(f"{annotations}: not a COCO annotation file ({err})") from None
        self.category_ids = sorted(self.coco.getCatIds())
        self._label_of = {cid: i + 1 for i, cid in enumerate(self.category_ids)}
        self.image_ids = sorted(self.coco.getImgIds()) if image_ids is None else list(image_ids)
        self.masks = masks
        #: Objects left out because their mask is empty at the image's size (``masks`` only).
        self.empty_masks: set[int] = set()
        self.box_problems = self._check_boxes()

    def _check_boxes(self) -> dict[str, int]:
        """Count the boxes the targets clip (reaching past their image) or leave out (no area,
        or wholly outside it), and say so once: real COCO 2017 holds boxes that reach a fraction
        of a pixel past their image and a few without area, so these are warnings, not errors."""
        counts = {"clipped": 0, "skipped": 0}
        images = self.coco.imgs
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=self.image_ids, iscrowd=False)):
            x, y, w, h = ann["bbox"]
            info = images.get(ann["image_id"], {})
            width, height = info.get("width", float("inf")), info.get("height", float("inf"))
            if w <= 0 or h <= 0 or x >= width or y >= height or x + w <= 0 or y + h <= 0:
                counts["skipped"] += 1
            elif x < 0 or y < 0 or x + w > width or y + h > height:
                counts["clipped"] += 1
        if any(counts.values()):
            print(
                f"gp-loss: {self.root} {self.split}2017: {counts['clipped']} boxes reach past their image "
                f"(clipped), {counts['skipped']} have no area inside it (left out)",
                file=sys.stderr,
            )
        return counts

    @property
    def num_classes(self) -> int:
        """Object classes (background excluded)."""
        return len(self.category_ids)

    def category_id(self, label: int) -> int:
        """COCO category id of a contiguous model label (1..K)."""
        return self.category_ids[label - 1]

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image_id = self.image_ids[index]
        info = self.coco.loadImgs(image_id)[0]
        path = self.folder / info["file_name"]
        try:
            image = Image.open(path).convert("RGB")
        except OSError as err:
            raise GpLossError(f"cannot read image {path}: {err}") from None
        boxes, labels, masks = [], [], []
        width, height = image.size
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=False)):
            x, y, w, h = ann["bbox"]
            x0, y0 = max(0.0, x), max(0.0, y)  # clipped to the image (counted in box_problems)
            x1, y1 = min(float(width), x + w), min(float(height), y + h)
            if x1 <= x0 or y1 <= y0 or ann["category_id"] not in self._label_of:
                continue
            if self.masks:
                mask = self._mask(ann, info, image.size)
                if not mask.any():
                    self.empty_masks.add(int(ann["id"]))
                    continue
                masks.append(mask)
            boxes.append([x0, y0, x1, y1])
            labels.append(self._label_of[ann["category_id"]])
        tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
        target = {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "image_id": int(image_id),
        }
        if self.masks:
            target["masks"] = (
                torch.from_numpy(np.stack(masks))
                if masks
                else torch.zeros((0, height, width), dtype=torch.uint8)
            )
        return tensor, target

    def _mask(self, ann: dict, info: dict, size: tuple[int, int]) -> np.ndarray:
        """The object's mask at the image's size, (H, W) uint8; a one-line error if the
        annotation's segmentation cannot be read or the image is not the size it declares."""
        if (info.get("width"), info.get("height")) != size:
            raise GpLossError(
                f"image {info['file_name']} is {size[0]}x{size[1]}, its annotation says "
                f"{info.get('width')}x{info.get('height')}"
            )
        try:
            return self.coco.annToMask(ann)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise GpLossError(f"annotation {ann.get('id')}: unreadable segmentation ({err})") from None


def collate(batch):
    """Detection batches are lists (images differ in size and box count)."""
    return tuple(zip(*batch))


def to_device(images, targets, device: torch.device) -> tuple[list[torch.Tensor], list[dict]]:
    """A collated batch's images and targets (their tensors) moved to ``device``."""
    images = [image.to(device) for image in images]
    targets = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]
    return images, targets


def data_identity(dataset: CocoDetection) -> dict[str, object]:
    """What identifies a split's data in a trunk key: its folder, split and image ids."""
    ids = hashlib.sha256(json.dumps(list(dataset.image_ids)).encode()).hexdigest()[:16]
    return {"root": str(dataset.root.resolve()), "split": dataset.split, "images": len(dataset), "ids": ids}
