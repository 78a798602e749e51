"""COCO loader and the Faster R-CNN with injected head losses (groundwork of det_coco)."""

from __future__ import annotations

import json

import pytest
import torch
from torchvision.models.detection.roi_heads import RoIHeads

from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.trees.loss_module import TreeLoss
from tasks.data.digit_scenes import DigitScenes
from tasks.data.layouts import COCO_CATEGORY_IDS, write_coco
from tasks.detection.coco_data import CocoDetection, collate
from tasks.detection.model import SearchedRoIHeads, head_samples, inject, small_faster_rcnn


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    write_coco(root, DigitScenes(seed=0), {"train": 8, "val": 4, "test": 2})
    # an image without annotations, as real COCO has
    ann = root / "annotations" / "instances_val2017.json"
    data = json.loads(ann.read_text())
    (root / "val2017" / "000000000099.jpg").write_bytes((root / "val2017" / "000000000001.jpg").read_bytes())
    data["images"].append({"id": 99, "file_name": "000000000099.jpg", "height": 64, "width": 64})
    ann.write_text(json.dumps(data))
    return root


def test_loader_maps_non_contiguous_ids(coco_root):
    data = CocoDetection(coco_root, "train")
    assert data.num_classes == 10 and data.category_ids == list(COCO_CATEGORY_IDS)
    image, target = data[0]
    assert image.shape == (3, 64, 64) and image.min() >= 0 and image.max() <= 1
    assert target["labels"].min() >= 1 and target["labels"].max() <= 10
    scene = DigitScenes(seed=0).scene("train", 0)
    assert [data.category_id(int(label)) for label in target["labels"]] == [
        COCO_CATEGORY_IDS[i.label] for i in scene.instances
    ]
    assert torch.equal(target["boxes"], torch.tensor([i.box for i in scene.instances]))


def test_images_without_annotations_are_kept(coco_root):
    data = CocoDetection(coco_root, "val")
    empty = data[data.image_ids.index(99)][1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    model = small_faster_rcnn(10)
    model.train()
    images, targets = collate([data[0], data[data.image_ids.index(99)]])
    losses = model(list(images), list(targets))
    assert all(torch.isfinite(v) for v in losses.values())


def test_bad_roots_are_one_line_errors(tmp_path):
    with pytest.raises(GpLossError, match="not a COCO 2017 tree"):
        CocoDetection(tmp_path, "train")


def _batch(coco_root):
    data = CocoDetection(coco_root, "train")
    images, targets = collate([data[i] for i in range(4)])
    return list(images), list(targets)


def test_stock_losses_reproduce_torchvision(coco_root):
    """With nothing injected, the loss dict equals torchvision's stock model on the same
    weights and batch (the sampler draws from the same seeded RNG)."""
    torch.manual_seed(0)
    ours = small_faster_rcnn(10)
    stock = small_faster_rcnn(10)
    stock.load_state_dict(ours.state_dict())
    stock.roi_heads.__class__ = RoIHeads  # the plain torchvision head, same submodules
    assert isinstance(ours.roi_heads, SearchedRoIHeads)
    images, targets = _batch(coco_root)
    ours.train()
    stock.train()
    torch.manual_seed(1)
    a = ours(images, targets)
    torch.manual_seed(1)
    b = stock(images, targets)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-6, atol=1e-7), key


def test_injected_tree_losses_see_logits_and_decoded_boxes(coco_root):
    torch.manual_seed(0)
    model = small_faster_rcnn(10)
    ce = TreeLoss("neg(mul(y, log(y_hat)))", SlotSignature("softmax_onehot"))
    giou = TreeLoss(
        "neg(add(mul(inter, inv(union)), mul(union, inv(enclose))))", SlotSignature("box_iou_areas")
    )
    inject(model, ce, giou)
    model.train()
    images, targets = _batch(coco_root)
    torch.manual_seed(1)
    probe = head_samples(model, images, targets)  # the same random draws as the forward below
    torch.manual_seed(1)
    losses = model(images, targets)
    assert torch.allclose(losses["loss_classifier"], ce(probe["class_logits"], probe["labels"]))
    assert torch.allclose(losses["loss_box_reg"], giou(probe["pred_boxes"], probe["target_boxes"]))
    # the decoded ground truth boxes are real annotated boxes
    annotated = torch.cat([t["boxes"] for t in targets])
    gaps = torch.cdist(probe["target_boxes"], annotated).min(dim=1).values
    assert torch.all(gaps < 1e-3)
    losses["loss_classifier"].backward()
