"""Binary masks as COCO segmentations: stroke-exact polygons and uncompressed RLE.

COCO stores a single object (``iscrowd`` 0) as polygons and a crowd region (``iscrowd`` 1) as
uncompressed run-length encoding. :func:`mask_polygons` traces the pixel outline of every
4-connected piece of a mask (its outer boundary and its holes) along pixel corners, and joins
a piece's rings into one polygon with zero-width bridges (each bridge is walked there and
back). pycocotools fills a polygon by toggling at every boundary crossing, so a bridge cancels
itself and a hole stays a hole: the polygons rasterise back to exactly the mask they came from
(tested), digits with holes (0, 6, 8, 9) included.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy import ndimage

Point = tuple[int, int]


def _boundary_edges(piece: np.ndarray) -> list[tuple[Point, Point]]:
    """Directed pixel edges between the piece and the background, (x, y) corners, clockwise
    around the piece in image coordinates (y pointing down)."""
    padded = np.pad(piece, 1)
    inside = padded[1:-1, 1:-1]
    edges: list[tuple[Point, Point]] = []
    sides = (
        (padded[:-2, 1:-1], lambda x, y: ((x, y), (x + 1, y))),  # top
        (padded[1:-1, 2:], lambda x, y: ((x + 1, y), (x + 1, y + 1))),  # right
        (padded[2:, 1:-1], lambda x, y: ((x + 1, y + 1), (x, y + 1))),  # bottom
        (padded[1:-1, :-2], lambda x, y: ((x, y + 1), (x, y))),  # left
    )
    for neighbour, edge in sides:
        ys, xs = np.nonzero(inside & ~neighbour)
        edges += [edge(int(x), int(y)) for x, y in zip(xs, ys)]
    return edges


def _rings(edges: list[tuple[Point, Point]]) -> list[list[Point]]:
    """Chain directed edges into closed rings (every edge used once), collinear corners dropped."""
    leaving: dict[Point, list[Point]] = defaultdict(list)
    for start, end in edges:
        leaving[start].append(end)
    rings = []
    for first in sorted(leaving):
        while leaving[first]:
            ring, point = [first], leaving[first].pop()
            while point != first:
                ring.append(point)
                point = leaving[point].pop()
            rings.append(_corners(ring))
    return rings


def _corners(ring: list[Point]) -> list[Point]:
    """The ring's vertices where its direction changes."""
    kept = []
    for i, point in enumerate(ring):
        before, after = ring[i - 1], ring[(i + 1) % len(ring)]
        if (point[0] - before[0]) * (after[1] - point[1]) != (point[1] - before[1]) * (after[0] - point[0]):
            kept.append(point)
    return kept


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` of a binary (H, W) mask: one polygon per
    4-connected piece, its holes bridged in (see the module docstring); ``[]`` for an empty mask."""
    pieces, count = ndimage.label(np.asarray(mask, dtype=bool))
    polygons = []
    for label in range(1, count + 1):
        rings = _rings(_boundary_edges(pieces == label))
        anchor = rings[0][0]
        path: list[Point] = list(rings[0])
        for ring in rings[1:]:  # anchor -> ring -> back to the anchor: the bridge cancels itself
            path += [anchor, *ring, ring[0]]
        if len(rings) > 1:
            path.append(anchor)
        polygons.append([float(v) for point in path for v in point])
    return polygons


def mask_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE ``{"counts": [...], "size": [H, W]}`` of a binary mask (column-major
    runs, starting with a run of zeros), as COCO writes crowd regions."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"counts": [int(c) for c in counts], "size": [int(mask.shape[0]), int(mask.shape[1])]}
