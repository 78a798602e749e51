"""Write the built-in scenes in the *real* PASCAL VOC 2012 and COCO 2017 file layouts.

The tasks read the built-in data through the same loaders as the real datasets, so the
real-data path is exercised on every run. Writing is atomic per dataset: files go to a temporary
folder that is renamed into place at the end, so an interrupted generation is redone, never
half-used.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from tasks.data.digit_scenes import NUM_DIGIT_CLASSES, SPLITS, DigitScenes
from tasks.data.polygons import mask_polygons, mask_rle
from tasks.data.stick_figures import KEYPOINTS, SKELETON, StickFigures

#: COCO category ids of the ten digits: deliberately not contiguous, as in real COCO (1-90 with
#: gaps), so the id mapping of the loaders is exercised by the built-in data too.
COCO_CATEGORY_IDS = tuple(2 * d + 1 for d in range(NUM_DIGIT_CLASSES))
DIGIT_NAMES = tuple(f"digit_{d}" for d in range(NUM_DIGIT_CLASSES))


def voc_palette() -> list[int]:
    """The standard PASCAL VOC colour map (256 RGB entries, flattened)."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(8):
            r |= ((c >> 0) & 1) << (7 - shift)
            g |= ((c >> 1) & 1) << (7 - shift)
            b |= ((c >> 2) & 1) << (7 - shift)
            c >>= 3
        palette += [r, g, b]
    return palette


def _publish(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


def write_voc(root: str | os.PathLike, scenes: DigitScenes, counts: Mapping[str, int]) -> Path:
    """``root/VOCdevkit/VOC2012`` with JPEGImages, SegmentationClass (palette PNG, 255 borders),
    SegmentationObject and ImageSets/Segmentation/{train,val,test}.txt."""
    root = Path(root)
    tmp = Path(tempfile.mkdtemp(prefix=".voc-", dir=root if root.exists() else None))
    base = tmp / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    palette = voc_palette()
    for split in SPLITS:
        names = []
        for index in range(counts.get(split, 0)):
            name = f"{split}_{index:06d}"
            scene = scenes.scene(split, index)
            Image.fromarray(scene.image).save(base / "JPEGImages" / f"{name}.jpg", quality=95)
            classes = Image.fromarray(scene.semantic, mode="P")
            classes.putpalette(palette)
            classes.save(base / "SegmentationClass" / f"{name}.png")
            objects = np.zeros_like(scene.semantic)
            for k, instance in enumerate(scene.instances, 1):
                objects[instance.mask] = k
            objects[scene.semantic == 255] = 255
            obj = Image.fromarray(objects, mode="P")
            obj.putpalette(palette)
            obj.save(base / "SegmentationObject" / f"{name}.png")
            names.append(name)
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(n + "\n" for n in names))
    final = root / "VOCdevkit"
    _publish(tmp, final)
    return final / "VOC2012"


def _write_coco_tree(
    root: str | os.PathLike,
    kind: str,
    description: str,
    categories: list[dict],
    counts: Mapping[str, int],
    scene: Callable[[str, int], tuple[np.ndarray, list[dict]]],
) -> Path:
    """``root/{split}2017/`` images and ``root/annotations/{kind}_{split}2017.json``: ``scene(split,
    index)`` gives an image and its annotations (ids and image ids are filled in here)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".coco-{kind}-", dir=root))
    (tmp / "annotations").mkdir()
    annotation_id = 1
    for split in SPLITS:
        folder = tmp / f"{split}2017"
        folder.mkdir()
        images, annotations = [], []
        for index in range(counts.get(split, 0)):
            pixels, found = scene(split, index)
            image_id = index + 1
            file_name = f"{image_id:012d}.jpg"
            Image.fromarray(pixels).save(folder / file_name, quality=95)
            height, width = pixels.shape[:2]
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            for annotation in found:
                annotations.append({"id": annotation_id, "image_id": image_id, **annotation})
                annotation_id += 1
        data = {
            "info": {"description": description, "version": "1"},
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        (tmp / "annotations" / f"{kind}_{split}2017.json").write_text(json.dumps(data))
    for entry in tmp.iterdir():
        _publish(entry, root / entry.name)
    tmp.rmdir()
    return root


def _xywh(box: tuple[float, float, float, float]) -> list[float]:
    x0, y0, x1, y1 = box
    return [x0, y0, x1 - x0, y1 - y0]


def write_coco(root: str | os.PathLike, scenes: DigitScenes, counts: Mapping[str, int]) -> Path:
    """``root/`` with {train,val,test}2017/ images and annotations/instances_{split}2017.json
    (xywh boxes, mask areas, non-contiguous category ids; single digits as stroke-exact
    polygons with ``iscrowd`` 0, crowd regions as uncompressed RLE with ``iscrowd`` 1, as COCO
    writes them)."""
    categories = [
        {"id": cid, "name": name, "supercategory": "digit"}
        for cid, name in zip(COCO_CATEGORY_IDS, DIGIT_NAMES)
    ]

    def scene(split: str, index: int) -> tuple[np.ndarray, list[dict]]:
        found = scenes.scene(split, index)
        return found.image, [
            {
                "category_id": COCO_CATEGORY_IDS[instance.label],
                "bbox": _xywh(instance.box),
                "area": float(instance.mask.sum()),
                "iscrowd": int(instance.crowd),
                "segmentation": mask_rle(instance.mask) if instance.crowd else mask_polygons(instance.mask),
            }
            for instance in found.instances
        ]

    return _write_coco_tree(root, "instances", "gp-loss digit scenes", categories, counts, scene)


def write_coco_keypoints(root: str | os.PathLike, figures: StickFigures, counts: Mapping[str, int]) -> Path:
    """``root/`` with {train,val,test}2017/ images and annotations/person_keypoints_{split}2017.json:
    one ``person`` category with COCO's 17 ``keypoints`` and ``skeleton``; per person its
    ``keypoints`` (x, y, v triples), ``num_keypoints``, xywh ``bbox`` and ``area`` of its visible
    pixels, ``iscrowd`` 0 and polygon ``segmentation``, as COCO writes person keypoints."""
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(KEYPOINTS),
        "skeleton": [list(pair) for pair in SKELETON],
    }

    def scene(split: str, index: int) -> tuple[np.ndarray, list[dict]]:
        found = figures.scene(split, index)
        return found.image, [
            {
                "category_id": 1,
                "keypoints": [
                    v if i % 3 < 2 else int(v) for i, v in enumerate(person.keypoints.flatten().tolist())
                ],
                "num_keypoints": person.num_keypoints,
                "bbox": _xywh(person.box),
                "area": float(person.mask.sum()),
                "iscrowd": 0,
                "segmentation": mask_polygons(person.mask),
            }
            for person in found.persons
        ]

    return _write_coco_tree(root, "person_keypoints", "gp-loss stick figures", [category], counts, scene)
