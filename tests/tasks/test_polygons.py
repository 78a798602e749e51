"""Masks as COCO polygons and RLE: rasterised back by pycocotools to exactly the same pixels."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tasks.data.polygons import mask_polygons, mask_rle


def _rasterise(polygons: list[list[float]], shape: tuple[int, int]) -> np.ndarray:
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, *shape))).astype(bool)


def test_a_square_is_its_four_corners():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:5, 1:4] = True  # rows 2-4, columns 1-3
    (polygon,) = mask_polygons(mask)
    corners = {(polygon[i], polygon[i + 1]) for i in range(0, len(polygon), 2)}
    assert corners == {(1.0, 2.0), (4.0, 2.0), (4.0, 5.0), (1.0, 5.0)}
    assert np.array_equal(_rasterise([polygon], mask.shape), mask)


def test_a_ring_keeps_its_hole_and_separate_pieces_get_a_polygon_each():
    mask = np.zeros((12, 12), dtype=bool)
    mask[1:8, 1:8] = True
    mask[3:6, 3:6] = False  # the hole of a '0'
    mask[9:11, 9:11] = True  # a second piece
    polygons = mask_polygons(mask)
    assert len(polygons) == 2
    assert _rasterise(polygons, mask.shape).sum() == 49 - 9 + 4
    assert np.array_equal(_rasterise(polygons, mask.shape), mask)


@pytest.mark.parametrize("density", [0.2, 0.5, 0.8])
def test_random_masks_round_trip_exactly(density):
    rng = np.random.default_rng(int(density * 10))
    for _ in range(40):
        mask = rng.random((13, 17)) < density
        assert np.array_equal(_rasterise(mask_polygons(mask), mask.shape), mask)


def test_empty_mask_has_no_polygon():
    assert mask_polygons(np.zeros((4, 4), dtype=bool)) == []


def test_rle_is_column_major_and_starts_with_zeros():
    mask = np.array([[0, 1], [1, 1]], dtype=bool)  # column-major: 0, 1, 1, 1
    assert mask_rle(mask) == {"counts": [1, 3], "size": [2, 2]}
    full = np.ones((2, 3), dtype=bool)
    assert mask_rle(full) == {"counts": [0, 6], "size": [2, 3]}
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((9, 7)) < 0.4
        rle = mask_utils.frPyObjects(mask_rle(mask), 9, 7)
        assert np.array_equal(mask_utils.decode(rle).astype(bool), mask)
