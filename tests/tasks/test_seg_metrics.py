"""The six segmentation metrics against scikit-learn and brute-force / hand-computed references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, jaccard_score

from tasks.segmentation.metrics import (
    BAND_RADIUS,
    BF_TOLERANCE,
    METRICS,
    SegmentationStats,
    class_boundaries,
    evaluate,
    per_image,
)

C = 5


def _blobs(rng: np.random.Generator, size: int = 24, void: bool = True) -> np.ndarray:
    """A label map of a few rectangles on background, optionally outlined in void like VOC."""
    labels = np.zeros((size, size), dtype=np.int64)
    for _ in range(rng.integers(1, 4)):
        y, x = rng.integers(0, size - 6, 2)
        h, w = rng.integers(4, 12, 2)
        labels[y : y + h, x : x + w] = rng.integers(1, C)
    if void:
        labels[class_boundaries(labels)] = 255
    return labels


def _noisy(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pred = np.where(gt == 255, 0, gt)
    flip = rng.random(gt.shape) < 0.15
    pred[flip] = rng.integers(0, C, flip.sum())
    return np.roll(pred, rng.integers(-2, 3), axis=1)


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    gts = [_blobs(rng) for _ in range(6)]
    return [_noisy(g, rng) for g in gts], gts


def test_perfect_prediction_scores_one_everywhere(pairs):
    _, gts = pairs
    preds = [np.where(g == 255, 3, g) for g in gts]  # any value under the void outline
    assert evaluate(preds, gts, C) == pytest.approx(dict.fromkeys(METRICS, 1.0), abs=1e-12)


def test_region_metrics_match_scikit_learn(pairs):
    preds, gts = pairs
    scores = evaluate(preds, gts, C)
    keep = np.concatenate([g.ravel() for g in gts]) != 255
    y_true = np.concatenate([g.ravel() for g in gts])[keep]
    y_pred = np.concatenate([p.ravel() for p in preds])[keep]
    present = np.union1d(y_true, y_pred)
    per_class = jaccard_score(y_true, y_pred, labels=present, average=None)
    assert scores["mIoU"] == pytest.approx(per_class.mean(), abs=1e-12)
    freq = np.array([(y_true == c).mean() for c in present])
    assert scores["FWIoU"] == pytest.approx((freq * per_class).sum(), abs=1e-12)
    assert scores["gAcc"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert scores["mAcc"] == pytest.approx(balanced_accuracy_score(y_true, y_pred), abs=1e-12)


def _brute_boundaries(labels: np.ndarray) -> set[tuple[int, int]]:
    h, w = labels.shape
    out = set()
    for y in range(h):
        for x in range(w):
            near = {
                labels[min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
            }
            if len(near) > 1:
                out.add((y, x))
    return out


def _near(points: set, pixel: tuple[int, int], radius: float) -> bool:
    return any(math.hypot(pixel[0] - y, pixel[1] - x) <= radius for y, x in points)


def test_biou_matches_a_brute_force_band(pairs):
    preds, gts = pairs
    true, pred = [], []
    for p, g in zip(preds, gts):
        edges = _brute_boundaries(g)
        for y in range(g.shape[0]):
            for x in range(g.shape[1]):
                if g[y, x] != 255 and _near(edges, (y, x), BAND_RADIUS):
                    true.append(g[y, x])
                    pred.append(p[y, x])
    present = np.union1d(true, pred)
    reference = jaccard_score(true, pred, labels=present, average=None).mean()
    assert evaluate(preds, gts, C)["BIoU"] == pytest.approx(reference, abs=1e-12)


def _brute_bf1(preds, gts) -> float:
    counts = np.zeros((4, C))
    for p, g in zip(preds, gts):
        p = np.where(g == 255, 255, p)
        g_edges, p_edges = _brute_boundaries(g), _brute_boundaries(p)
        for c in range(C):
            g_c = {q for q in g_edges if g[q] == c}
            p_c = {q for q in p_edges if p[q] == c}
            counts[0, c] += sum(_near(g_c, q, BF_TOLERANCE) for q in p_c)
            counts[1, c] += len(p_c)
            counts[2, c] += sum(_near(p_c, q, BF_TOLERANCE) for q in g_c)
            counts[3, c] += len(g_c)
    f1s = []
    for c in range(C):
        if counts[1, c] == 0 and counts[3, c] == 0:
            continue
        precision = counts[0, c] / counts[1, c] if counts[1, c] else 0.0
        recall = counts[2, c] / counts[3, c] if counts[3, c] else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(f1s))


def test_bf1_matches_a_brute_force_reference(pairs):
    preds, gts = pairs
    assert evaluate(preds, gts, C)["BF1"] == pytest.approx(_brute_bf1(preds, gts), abs=1e-12)


def _square(top: int, left: int, side: int = 8, size: int = 32) -> np.ndarray:
    labels = np.zeros((size, size), dtype=np.int64)
    labels[top : top + side, left : left + side] = 1
    return labels


def test_boundary_metrics_hand_computed_cases():
    gt = _square(10, 10)
    # shifted by 3 px: every boundary pixel lies within the 5 px tolerance, the region IoU drops
    shifted = evaluate([_square(10, 13)], [gt], 2)
    assert shifted["BF1"] == 1.0
    assert shifted["mIoU"] < 1.0
    # background only: no predicted boundary at all, so precision and recall are 0 for both classes
    empty = evaluate([np.zeros_like(gt)], [gt], 2)
    assert empty["BF1"] == 0.0
    # IoU of class 1 is 0 and the background is everything but the square
    assert empty["mIoU"] == pytest.approx((1 - 64 / 1024) / 2)
    # shifted by 20 px: the squares are disjoint and beyond tolerance, BF1 of both classes is 0
    assert evaluate([_square(10, 30 - 8)], [_square(10, 2)], 2)["BF1"] == 0.0


def test_biou_only_looks_inside_the_band():
    gt = _square(4, 4, size=40)
    pred = gt.copy()
    pred[30:, 30:] = 1  # a false positive more than 5 px away from every true boundary
    scores = evaluate([pred], [gt], 2)
    assert scores["BIoU"] == 1.0
    assert scores["mIoU"] < 1.0


def test_per_image_scores_each_image_alone(pairs):
    preds, gts = pairs
    for metric in METRICS:
        values = per_image(metric, np.stack(preds), np.stack(gts), C)
        assert values.shape == (len(preds),)
        for value, p, g in zip(values, preds, gts):
            assert value == pytest.approx(evaluate([p], [g], C)[metric])


def test_set_metrics_pool_the_confusion_not_the_images():
    big, small = _square(4, 4, side=20), _square(4, 4, side=4)
    preds = [big, np.zeros_like(small)]
    pooled = evaluate(preds, [big, small], 2)["mIoU"]
    mean_of_images = np.mean(per_image("mIoU", np.stack(preds), np.stack([big, small]), 2))
    assert pooled != pytest.approx(mean_of_images)


def test_all_void_image_counts_nothing():
    stats = SegmentationStats(3)
    stats.add(np.zeros((8, 8), dtype=np.int64), np.full((8, 8), 255))
    assert stats.scores() == dict.fromkeys(METRICS, 0.0)
    with pytest.raises(ValueError, match="differ in shape"):
        stats.add(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="unknown segmentation metric"):
        per_image("AP", np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), 2)
