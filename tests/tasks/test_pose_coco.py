"""pose_coco: stick figures in the real COCO keypoints layout, crops and heatmaps, the heatmap
adapter against hand-written joints MSE, OKS AP against hand-computed cases, LRP, the trunk proxy
and the task end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import tasks.trunk_cache as trunk_cache
from gp_loss import load_loss
from gp_loss.core.baselines import get_baseline
from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.results.final_training import resolve_losses
from gp_loss.trees.loss_module import TreeLoss
from tasks import get_task
from tasks.data.layouts import write_coco_keypoints
from tasks.data.stick_figures import KEYPOINTS, SKELETON, StickFigures
from tasks.pose.coco_keypoints import CocoKeypoints
from tasks.pose.evaluation import COCO_SIGMAS, coco_keypoint_ap, oks
from tasks.pose.heatmaps import IGNORED, crop_box, decode, to_heatmap, to_image
from tasks.pose.losses import joints_mse, softmax_kl
from tests.test_cli import call_cli, run_cli

SIGNATURE = SlotSignature("heatmap", spatial=True)
SMALL = {"steps": 4, "batch_size": 4, "trunk_steps": 3, "final_steps": 2}


def test_figures_are_deterministic_and_labelled_as_coco_does():
    figures = StickFigures(seed=0)
    a, b = figures.scene("train", 3), StickFigures(seed=0).scene("train", 3)
    assert np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, figures.scene("val", 3).image)
    seen = {0: 0, 1: 0, 2: 0}
    unlabelled_people = empty_images = 0
    for index in range(60):
        scene = figures.scene("train", index)
        empty_images += not scene.persons
        for person in scene.persons:
            unlabelled_people += person.num_keypoints == 0
            for x, y, v in person.keypoints:
                seen[int(v)] += 1
                if v == 0:
                    assert x == y == 0  # COCO writes an unlabelled keypoint as (0, 0, 0)
                else:
                    assert 0 <= x < 128 and 0 <= y < 128
                if v == 2:  # a visible keypoint lies on its own figure's pixels
                    row, col = int(y), int(x)
                    assert person.mask[max(0, row - 1) : row + 2, max(0, col - 1) : col + 2].any()
    assert all(seen[v] > 0 for v in (0, 1, 2)) and unlabelled_people > 0 and empty_images > 0


@pytest.fixture(scope="module")
def keypoint_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_keypoints")
    write_coco_keypoints(root, StickFigures(seed=1), {"train": 16, "val": 6, "test": 0})
    return root


def test_layout_reads_with_pycocotools(keypoint_root):
    from pycocotools.coco import COCO

    coco = COCO(str(keypoint_root / "annotations" / "person_keypoints_train2017.json"))
    (category,) = coco.loadCats(coco.getCatIds())
    assert category["name"] == "person" and category["keypoints"] == list(KEYPOINTS)
    assert category["skeleton"] == [list(pair) for pair in SKELETON]
    figures = StickFigures(seed=1)
    for image_id in coco.getImgIds():
        scene = figures.scene("train", image_id - 1)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert len(anns) == len(scene.persons)
        for ann, person in zip(anns, scene.persons):
            assert ann["num_keypoints"] == int((np.array(ann["keypoints"])[2::3] > 0).sum())
            assert np.allclose(np.array(ann["keypoints"]).reshape(17, 3), person.keypoints)
            assert ann["area"] == person.mask.sum() and ann["iscrowd"] == 0
            assert np.array_equal(coco.annToMask(ann).astype(bool), person.mask)


def _write_fixture(root, people: list[dict], images: int = 2) -> None:
    """A hand-written COCO keypoints tree: 64 x 64 black images with white dots where given."""
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    for i in range(1, images + 1):
        pixels = np.zeros((64, 64, 3), dtype=np.uint8)
        for person in people:
            if person["image_id"] == i:
                for x, y, v in np.array(person["keypoints"]).reshape(17, 3):
                    if v > 0:
                        pixels[int(y), int(x)] = 255
        Image.fromarray(pixels).save(root / "val2017" / f"{i}.png")
    data = {
        "images": [
            {"id": i, "file_name": f"{i}.png", "height": 64, "width": 64} for i in range(1, images + 1)
        ],
        "annotations": [{"id": k + 1, "category_id": 1, "iscrowd": 0, **p} for k, p in enumerate(people)],
        "categories": [{"id": 1, "name": "person", "keypoints": list(KEYPOINTS), "skeleton": []}],
    }
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(data))


def _person(image_id, points, area=400.0, bbox=(10, 10, 30, 40), hidden=()):
    keypoints = []
    for j, (x, y) in enumerate(points):
        keypoints += [0, 0, 0] if j in hidden else [x, y, 2]
    return {
        "image_id": image_id,
        "keypoints": keypoints,
        "num_keypoints": 17 - len(hidden),
        "bbox": list(bbox),
        "area": area,
    }


POINTS = [(12 + (j % 4) * 8 + 0.5, 12 + (j // 4) * 8 + 0.5) for j in range(17)]


def test_loader_crops_people_and_marks_unlabelled_keypoints(tmp_path):
    people = [
        _person(1, POINTS, hidden=(3,)),
        {**_person(1, POINTS), "num_keypoints": 0, "keypoints": [0] * 51},  # a box only
        {**_person(1, POINTS), "iscrowd": 1},  # a crowd: never an item
    ]
    _write_fixture(tmp_path, people, images=2)  # image 2 holds nobody
    data = CocoKeypoints(tmp_path, "val", input_size=(64, 48))
    assert len(data) == 1 and data.image_ids == [1, 2]
    image, targets = data[0]
    assert image.shape == (3, 64, 48) and targets.shape == (17, 16, 12)
    assert bool((targets[3] == IGNORED).all())  # v = 0: weight 0
    box = crop_box((10, 10, 30, 40), 48 / 64)
    assert np.allclose(box, [6.25, 5.0, 43.75, 55.0])  # 30 x 40 is already 3:4: padded by 1.25
    assert np.allclose(crop_box((0, 0, 40, 20), 0.75), [-5.0, -70 / 3, 45.0, 130 / 3])  # heightened to 3:4
    for j in (0, 5, 16):  # each target peaks where its keypoint maps
        hx, hy = to_heatmap(np.array([POINTS[j]]), box, (64, 48), 4)[0]
        peak_y, peak_x = np.unravel_index(int(targets[j].argmax()), targets[j].shape)
        assert abs(peak_x - hx) <= 0.5 and abs(peak_y - hy) <= 0.5
    row, col = np.unravel_index(int(image[0].argmax()), image[0].shape)  # the crop's brightest pixel
    centre = np.array([[(col + 0.5) / 4 - 0.5, (row + 0.5) / 4 - 0.5]])  # in heatmap coordinates
    assert min(math.dist(to_image(centre, box, (64, 48), 4)[0], p) for p in POINTS) < 1.0  # is a dot
    assert np.allclose(to_image(to_heatmap(np.array(POINTS), box, (64, 48), 4), box, (64, 48), 4), POINTS)


def test_decode_moves_a_quarter_pixel_toward_the_higher_neighbour():
    maps = torch.zeros(1, 2, 5, 6)
    maps[0, 0, 2, 3], maps[0, 0, 2, 4], maps[0, 0, 1, 3] = 1.0, 0.5, 0.2  # right and up are higher
    maps[0, 1, 0, 0] = 1.0  # on the border: no shift
    points, values = decode(maps)
    assert points[0, 0].tolist() == [3.25, 1.75] and points[0, 1].tolist() == [0.0, 0.0]
    assert values[0].tolist() == [1.0, 1.0]


def _heatmaps(seed: int = 0):
    torch.manual_seed(seed)
    prediction = torch.randn(3, 17, 8, 6, requires_grad=True)
    target = torch.rand(3, 17, 8, 6)
    target[0, 4] = IGNORED
    target[2, :5] = IGNORED
    return prediction, target


def test_mse_tree_is_the_joints_mse_over_labelled_keypoints():
    prediction, target = _heatmaps()
    tree = TreeLoss(get_baseline("heatmap_mse").tree, SIGNATURE)(prediction, target)
    labelled = (target >= 0).flatten(2).all(2)
    by_hand = torch.stack(
        [((prediction[n, k] - target[n, k]) ** 2).mean() for n, k in labelled.nonzero()]
    ).mean()
    assert torch.allclose(tree, by_hand, atol=1e-6) and torch.allclose(
        joints_mse(prediction, target), by_hand
    )
    # SimpleBaseline's JointsMSELoss: 0.5 x MSE of weighted maps, averaged over every joint
    weight = labelled.float()[:, :, None]
    simple = 0.5 * ((prediction.flatten(2) * weight - target.clamp(min=0).flatten(2) * weight) ** 2).mean()
    assert torch.allclose(tree, 2 * simple * labelled.numel() / labelled.sum(), atol=1e-6)
    l1 = TreeLoss(get_baseline("heatmap_l1").tree, SIGNATURE)(prediction, target)
    assert torch.allclose(l1, (prediction - target).abs()[target >= 0].mean(), atol=1e-6)


def test_unlabelled_keypoints_change_neither_value_nor_gradient():
    prediction, target = _heatmaps()
    loss = TreeLoss("add(square(r), mul(maxpool3(y_hat), y))", SIGNATURE)
    value = loss(prediction, target)
    (grad,) = torch.autograd.grad(value, prediction)
    assert float(grad[0, 4].abs().max()) == 0.0 and float(grad[2, :5].abs().max()) == 0.0
    moved = prediction.detach().clone()
    moved[0, 4] += 100.0
    moved[2, :5] -= 50.0
    assert torch.allclose(loss(moved, target), value)


def test_softmax_kl_on_a_hand_computed_case():
    heatmaps = torch.zeros(1, 17, 4, 4)  # uniform softmax: 1/16 everywhere
    targets = torch.full((1, 17, 4, 4), IGNORED)
    targets[0, 0] = 0.0
    targets[0, 0, 1, 2] = 1.0  # a point mass: KL = log 16
    assert float(softmax_kl(heatmaps, targets)) == pytest.approx(math.log(16))
    assert float(softmax_kl(heatmaps, torch.full_like(targets, IGNORED))) == 0.0


def _result(image_id: int, points, shift: float = 0.0, score: float = 0.9) -> dict:
    keypoints = []
    for x, y in points:
        keypoints += [x + shift, y, 1]
    return {"image_id": image_id, "category_id": 1, "keypoints": keypoints, "score": score}


def test_oks_ap_on_hand_computed_cases(tmp_path):
    people = [_person(1, POINTS, area=400.0), _person(2, POINTS, area=400.0, hidden=(0, 1))]
    _write_fixture(tmp_path, people)
    data = CocoKeypoints(tmp_path, "val")
    perfect = [_result(1, POINTS), _result(2, POINTS)]
    assert coco_keypoint_ap(data.coco, data.image_ids, perfect) == pytest.approx(
        {"AP": 1.0, "AP50": 1.0, "AP75": 1.0}
    )
    # every keypoint 1.25 px to the right: OKS = mean over labelled j of exp(-d^2 / (2 area (2 sigma_j)^2))
    one = float(np.mean(np.exp(-(1.25**2) / (2 * 400 * (2 * COCO_SIGMAS) ** 2))))  # 17 labelled
    two = float(np.mean(np.exp(-(1.25**2) / (2 * 400 * (2 * COCO_SIGMAS[2:]) ** 2))))  # 15 labelled
    assert 0.80 < one < 0.85 < two < 0.90
    # person 1 matches at the thresholds 0.50-0.80 (7), person 2 at 0.50-0.85 (8). At 0.85 the
    # higher-scored detection (person 2's) is right and the other wrong: precision 1 up to recall
    # 1/2, so 51 of COCO's 101 recall points; at 0.90 and 0.95 nothing matches
    shifted = [_result(1, POINTS, 1.25, score=0.9), _result(2, POINTS, 1.25, score=0.95)]
    expected = (7 + 51 / 101) / 10
    scores = coco_keypoint_ap(data.coco, data.image_ids, shifted)
    assert scores == pytest.approx({"AP": expected, "AP50": 1.0, "AP75": 1.0})
    truth = torch.tensor([POINTS, POINTS], dtype=torch.float64)
    labelled = torch.ones(2, 17, dtype=torch.bool)
    labelled[1, :2] = False
    area = torch.tensor([400.0, 400.0], dtype=torch.float64)
    ours = oks(truth + torch.tensor([1.25, 0.0], dtype=torch.float64), truth, labelled, area)
    assert ours.tolist() == pytest.approx([one, two])
    assert coco_keypoint_ap(data.coco, data.image_ids, []) == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}


def test_probe_and_lrp_calibration():
    from gp_loss.bench import lrp

    task = get_task("pose_coco")
    probe = task.probe_batch("hm")
    assert probe.predictions.shape == probe.targets.shape == (16, 17, 16, 12)
    perfect = task.probe_metric("hm", probe.targets, probe.targets)
    assert torch.allclose(perfect, torch.ones(16))
    assert float(task.probe_metric("hm", probe.predictions, probe.targets).mean()) < 0.3
    text = lrp.run(task, n_random=3)
    assert "every known-good passes and every known-bad is rejected: yes" in text


@pytest.fixture
def trunk_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(trunk_cache, "cache_root", lambda: tmp_path)
    return tmp_path


def test_trunk_proxy_trains_a_fresh_decoder_and_leaves_the_trunk_alone(trunk_folder):
    task = get_task("pose_coco", **SMALL)
    before = {k: v.clone() for k, v in task.trunk().state_dict().items()}
    assert list((trunk_folder / "pose_trunks").glob("*.pt"))
    _name, losses = resolve_losses(task, "joints_mse")
    results = list(task.proxy_rungs(losses, [2, 4]))
    assert [r.steps for r in results] == [2, 4] and all(
        set(r.metrics) == {"AP", "AP50", "AP75"} for r in results
    )
    after = task.trunk().state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    (whole,) = task.proxy_rungs(losses, [4])
    assert whole.metrics == results[-1].metrics
    full = get_task("pose_coco", proxy="full", **SMALL).proxy_train(losses)
    assert full.outcome == "trained" and set(full.metrics) == {"AP", "AP50", "AP75"}


def test_real_layout_data_root_and_bad_input(tmp_path, keypoint_root):
    task = get_task("pose_coco", data_root=str(keypoint_root), holdout=0.25, proxy="full", **SMALL)
    assert task.test_set.split == "val" and not set(task.train_set.image_ids) & set(task.val_set.image_ids)
    with pytest.raises(GpLossError, match="not a COCO 2017 keypoints tree"):
        get_task("pose_coco", data_root=str(tmp_path))
    with pytest.raises(GpLossError, match="unknown pose model"):
        get_task("pose_coco", data_root=str(keypoint_root), model="hrnet")


def test_simplebaseline_builds_offline_at_a_quarter_of_its_input():
    from tasks.pose.model import build_pose_model

    model = build_pose_model("simplebaseline_resnet50").eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 256, 192)).shape == (1, 17, 64, 48)


@pytest.mark.slow
def test_evolve_and_train_end_to_end(tmp_path):
    run = tmp_path / "pose"
    small = ["--task-option", "steps=2", "--task-option", "trunk_steps=2"]
    done = run_cli(
        "evolve",
        "--task",
        "pose_coco",
        *small,
        "--population",
        "2",
        "--max-trained",
        "2",
        "--out",
        str(run),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    best = json.loads((run / "best.json").read_text())
    assert (
        set(best["slots"]) == {"hm"}
        and best["slots"]["hm"]["adapter"] == "heatmap"
        and best["metric"] == "AP"
    )
    loss = load_loss(run / "best.json")
    prediction, target = _heatmaps()
    assert torch.isfinite(loss(prediction, target))
    for spec in (str(run / "best.json"), "kl_softmax"):
        done = call_cli(
            "train", "--task", "pose_coco", "--loss", spec, "--task-option", "final_steps=2", "--json"
        )
        assert done.returncode == 0, done.stderr
        assert set(json.loads(done.stdout)["summary"]) == {"AP", "AP50", "AP75"}
