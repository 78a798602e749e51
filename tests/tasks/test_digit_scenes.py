"""Digit scenes and their VOC / COCO layouts (the shared built-in data of seg_voc and det_coco)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tasks.data.digit_scenes import IGNORE, DigitScenes
from tasks.data.layouts import COCO_CATEGORY_IDS, write_coco, write_voc


@pytest.fixture(scope="module")
def scenes():
    return DigitScenes(seed=0)


def test_deterministic_and_seeded(scenes):
    a, b = scenes.scene("train", 5), DigitScenes(seed=0).scene("train", 5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.semantic, b.semantic)
    assert not np.array_equal(a.image, DigitScenes(seed=1).scene("train", 5).image)
    assert not np.array_equal(a.image, scenes.scene("val", 5).image)


def test_source_digits_are_disjoint_across_splits(scenes):
    parts = [set(scenes.sources[s].tolist()) for s in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == 1797


def test_labels_agree(scenes):
    for index in range(40):
        scene = scenes.scene("train", index)
        assert scene.image.shape == (64, 64, 3) and scene.image.dtype == np.uint8
        assert 1 <= len(scene.instances) <= 4
        assert set(np.unique(scene.semantic)) <= {0, IGNORE, *range(1, 11)}
        for instance in scene.instances:
            ys, xs = np.nonzero(instance.mask)
            assert instance.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            inner = instance.mask & (scene.semantic != IGNORE)
            assert np.all(scene.semantic[inner] == instance.label + 1)
        masks = [i.mask for i in scene.instances]
        assert sum(m.astype(int) for m in masks).max() <= 1  # visible masks do not overlap


def test_voc_layout(tmp_path, scenes):
    base = write_voc(tmp_path, scenes, {"train": 4, "val": 2, "test": 2})
    assert base == tmp_path / "VOCdevkit" / "VOC2012"
    names = (base / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    assert len(names) == 4
    mask = Image.open(base / "SegmentationClass" / f"{names[0]}.png")
    assert mask.mode == "P"
    assert np.array_equal(np.asarray(mask), scenes.scene("train", 0).semantic)
    assert Image.open(base / "JPEGImages" / f"{names[0]}.jpg").size == (64, 64)


def test_coco_layout_reads_with_pycocotools(tmp_path, scenes):
    from pycocotools.coco import COCO

    write_coco(tmp_path, scenes, {"train": 6, "val": 3, "test": 3})
    for split in ("train", "val", "test"):
        assert (tmp_path / f"{split}2017").is_dir()
    coco = COCO(str(tmp_path / "annotations" / "instances_val2017.json"))
    assert sorted(coco.getCatIds()) == list(COCO_CATEGORY_IDS)
    for image_id in coco.getImgIds():
        scene = scenes.scene("val", image_id - 1)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert len(anns) == len(scene.instances)
        for ann, instance in zip(anns, scene.instances):
            x, y, w, h = ann["bbox"]
            assert (x, y, x + w, y + h) == instance.box
            assert ann["category_id"] == COCO_CATEGORY_IDS[instance.label] and ann["iscrowd"] == 0
            assert ann["area"] == instance.mask.sum()
            assert np.array_equal(coco.annToMask(ann).astype(bool), instance.mask)  # stroke-exact
    data = json.loads((tmp_path / "annotations" / "instances_train2017.json").read_text())
    assert len(data["images"]) == 6


def test_crowds_leave_the_regular_digits_unchanged_and_are_written_as_rle(tmp_path):
    plain, crowded = DigitScenes(seed=0), DigitScenes(seed=0, crowd_rate=0.5)
    crowd_scenes = 0
    for index in range(30):
        a, b = plain.scene("train", index), crowded.scene("train", index)
        regular = [i for i in b.instances if not i.crowd]
        assert [i.box for i in regular] == [i.box for i in a.instances]
        assert all(np.array_equal(i.mask, j.mask) for i, j in zip(regular, a.instances))
        crowd_scenes += len(b.instances) > len(regular)
    assert 5 <= crowd_scenes <= 25
    from pycocotools.coco import COCO

    write_coco(tmp_path, crowded, {"train": 30})
    coco = COCO(str(tmp_path / "annotations" / "instances_train2017.json"))
    crowds = coco.loadAnns(coco.getAnnIds(iscrowd=True))
    assert len(crowds) == crowd_scenes
    for ann in crowds:
        assert isinstance(ann["segmentation"]["counts"], list)  # uncompressed RLE, as COCO's crowds
        scene = crowded.scene("train", ann["image_id"] - 1)
        (region,) = [i for i in scene.instances if i.crowd]
        assert np.array_equal(coco.annToMask(ann).astype(bool), region.mask)
