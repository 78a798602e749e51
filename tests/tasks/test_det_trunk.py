"""det_coco's cached-trunk proxy: built once, reused, rebuilt when its key changes; its RoI
targets are torchvision's own; the cache bound only changes memory, not results."""

from __future__ import annotations

import pytest
import torch

import tasks.trunk_cache as trunk_cache
from gp_loss.results.final_training import resolve_losses
from tasks import get_task
from tasks.det_coco import DetCoco
from tasks.detection.coco_data import collate
from tasks.detection.trunk import RoiCache, image_rois
from tasks.trunk_cache import trunk_key

SMALL = {"steps": 6, "batch_size": 2, "trunk_steps": 3}


@pytest.fixture
def trunk_trainings(tmp_path, monkeypatch):
    """Trunks go to a fresh folder; the list counts the trunk trainings that ran."""
    monkeypatch.setattr(trunk_cache, "cache_root", lambda: tmp_path)
    trained: list[int] = []
    original = DetCoco._training

    def counting(self, losses, data, steps, seed, stop_invalid):
        if not losses:  # the trunk: stock losses
            trained.append(steps)
        return original(self, losses, data, steps, seed, stop_invalid)

    monkeypatch.setattr(DetCoco, "_training", counting)
    return trained


def test_trunk_is_trained_once_reused_and_rebuilt_when_its_key_changes(trunk_trainings, tmp_path):
    first = get_task("det_coco", **SMALL)
    model = first.trunk()
    assert trunk_trainings == [3]
    files = sorted((tmp_path / "det_trunks").glob("*.pt"))
    assert [f.stem for f in files] == [trunk_key(first.trunk_settings())]
    assert not any(p.requires_grad for p in model.parameters())

    again = get_task("det_coco", **SMALL).trunk()  # a new process would do the same: load it
    assert trunk_trainings == [3]
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name

    get_task("det_coco", **{**SMALL, "trunk_steps": 4}).trunk()
    assert trunk_trainings == [3, 4]
    assert len(list((tmp_path / "det_trunks").glob("*.pt"))) == 2
    other_seed = get_task("det_coco", **SMALL, seed=1)
    assert trunk_key(other_seed.trunk_settings()) != trunk_key(first.trunk_settings())


def test_proxy_trains_a_fresh_head_and_leaves_the_trunk_alone(trunk_trainings):
    task = get_task("det_coco", **SMALL)
    before = {k: v.clone() for k, v in task.trunk().state_dict().items()}
    _name, losses = resolve_losses(task, "ce+giou")
    results = list(task.proxy_rungs(losses, [3, 6]))
    assert [r.steps for r in results] == [3, 6] and all("AP" in r.metrics for r in results)
    after = task.trunk().state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # continued between rungs: the same as one uninterrupted proxy training
    (whole,) = task.proxy_rungs(losses, [6])
    assert whole.metrics == results[-1].metrics


def test_roi_targets_are_torchvisions_and_the_memory_bound_only_changes_where_they_live(trunk_trainings):
    task = get_task("det_coco", **SMALL)
    model = task.trunk()
    images, targets = collate([task.train_set[i] for i in range(3)])
    rois = image_rois(model, list(images), list(targets), training=True)

    # torchvision's select_training_samples on the same proposals, with the same random draws
    image_list, transformed = model.transform(list(images), [dict(t) for t in targets])
    features = {"0": model.backbone(image_list.tensors)}
    with torch.no_grad():
        proposals, _ = model.rpn(image_list, features)
    heads = model.roi_heads
    torch.manual_seed(5)
    ref_proposals, _, ref_labels, ref_targets = heads.select_training_samples(proposals, transformed)
    torch.manual_seed(5)
    positive, negative = heads.fg_bg_sampler([r.labels for r in rois])
    for i, r in enumerate(rois):
        pick = torch.where(positive[i] | negative[i])[0]
        assert torch.equal(r.labels[pick], ref_labels[i])
        assert torch.allclose(r.regression_targets[pick], ref_targets[i])
        assert torch.equal(r.proposals[pick], ref_proposals[i])

    cached = RoiCache(model, task.val_set, task.device, training=False, bound_mb=1024)
    uncached = RoiCache(model, task.val_set, task.device, training=False, bound_mb=0)
    assert cached.cached is not None and uncached.cached is None
    first = list(range(16))  # the batch the cache pooled together: bit-identical recomputation
    for a, b in zip(cached.batch(first), uncached.batch(first)):
        assert torch.equal(a.pooled, b.pooled) and torch.equal(a.proposals, b.proposals)
    # another batch composition changes only float rounding (batched convolutions)
    for a, b in zip(cached.batch([0, 5]), uncached.batch([0, 5])):
        assert torch.allclose(a.pooled.float(), b.pooled.float(), rtol=1e-2, atol=1e-3)
