"""Bad data in the real layouts: corrupt images, masks of the wrong size, boxes outside their image
or without area. A one-line error naming the file, or a counted skip where real COCO holds such
annotations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gp_loss.core.errors import GpLossError
from tasks.data.digit_scenes import DigitScenes
from tasks.data.layouts import write_coco, write_coco_keypoints, write_voc
from tasks.data.stick_figures import StickFigures
from tasks.detection.coco_data import CocoDetection
from tasks.pose.coco_keypoints import CocoKeypoints
from tasks.segmentation.voc_data import VocSegmentation
from tests.test_cli import call_cli


@pytest.fixture
def coco(tmp_path):
    write_coco(tmp_path, DigitScenes(seed=4), {"train": 6, "val": 2})
    return tmp_path


def test_a_corrupt_jpeg_names_the_file(coco):
    bad = coco / "train2017" / "000000000003.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated mid-stream
    data = CocoDetection(coco, "train")
    data[0]  # the others load
    with pytest.raises(GpLossError, match=r"000000000003\.jpg"):
        data[2]
    (coco / "train2017" / "000000000004.jpg").write_bytes(b"not an image at all")
    with pytest.raises(GpLossError, match=r"000000000004\.jpg"):
        data[3]
    done = call_cli("train", "--task", "det_coco", "--loss", "ce+giou", "--data-root", str(coco),
                   "--task-option", "final_steps=2", "--task-option", "holdout=0.34")  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and ".jpg" in done.stderr


def test_boxes_outside_their_image_are_clipped_or_left_out_and_counted(coco, capsys):
    path = coco / "annotations" / "instances_train2017.json"
    data = json.loads(path.read_text())
    first = data["annotations"][0]
    image = first["image_id"]
    data["annotations"] += [
        {**first, "id": 901, "bbox": [50, 50, 40, 40]},  # reaches past the 64 x 64 image
        {**first, "id": 902, "bbox": [10, 10, -5, 8]},  # negative width
        {**first, "id": 903, "bbox": [100, 100, 5, 5]},  # wholly outside
        {**first, "id": 904, "bbox": [-3, 20, 10, 10]},  # starts before the left edge
    ]
    path.write_text(json.dumps(data))
    dataset = CocoDetection(coco, "train")
    assert dataset.box_problems == {"clipped": 2, "skipped": 2}
    assert "2 boxes reach past their image (clipped), 2 have no area inside it" in capsys.readouterr().err
    _, target = dataset[dataset.image_ids.index(image)]
    boxes = target["boxes"]
    assert float(boxes[:, 2].max()) <= 64 and float(boxes[:, 0].min()) >= 0
    assert [50.0, 50.0, 64.0, 64.0] in boxes.tolist() and [0.0, 20.0, 7.0, 30.0] in boxes.tolist()


def test_an_instance_image_of_another_size_than_its_annotation_names_the_image(coco):
    path = coco / "train2017" / "000000000002.jpg"
    Image.new("RGB", (80, 64)).save(path)
    data = CocoDetection(coco, "train", masks=True)
    with pytest.raises(GpLossError, match=r"000000000002.jpg is 80x64, its annotation says 64x64"):
        data[1]


@pytest.fixture
def voc(tmp_path):
    return write_voc(tmp_path, DigitScenes(seed=5), {"train": 4, "val": 2, "test": 2})


def test_voc_corrupt_files_and_a_mask_of_the_wrong_size_name_the_file(voc):
    names = (voc / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    mask = voc / "SegmentationClass" / f"{names[0]}.png"
    mask.write_bytes(mask.read_bytes()[:60])
    data = VocSegmentation(voc.parent.parent, "train", num_classes=11)
    with pytest.raises(GpLossError, match=f"cannot read {mask}"):
        data[0]
    small = Image.fromarray(np.zeros((32, 32), dtype=np.uint8), mode="P")
    small.save(voc / "SegmentationClass" / f"{names[1]}.png")
    with pytest.raises(GpLossError, match=rf"{names[1]}.png is 32x32, its image 64x64"):
        data[1]
    (voc / "JPEGImages" / f"{names[2]}.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(GpLossError, match=f"{names[2]}.jpg"):
        data[2]


def test_keypoint_images_that_do_not_decode_name_the_file(tmp_path):
    write_coco_keypoints(tmp_path, StickFigures(seed=6), {"val": 4})
    info = json.loads((tmp_path / "annotations" / "person_keypoints_val2017.json").read_text())
    victim = next(a["image_id"] for a in info["annotations"] if a["num_keypoints"] > 0)
    (tmp_path / "val2017" / f"{victim:012d}.jpg").write_bytes(b"corrupt")
    with pytest.raises(GpLossError, match=f"{victim:012d}.jpg"):
        CocoKeypoints(tmp_path, "val")  # the crops are read when the split is built
