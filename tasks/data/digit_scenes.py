"""Built-in data: "digit scenes" composed from scikit-learn's bundled handwritten digits.

Real human handwriting shipped inside the scikit-learn wheel (no download), upscaled and
composited 1-4 per canvas over clutter and noise (docs/architecture.md section 5). Each scene carries what the
vision tasks need: an RGB image, a semantic mask (0 background, 1 + digit for digits, 255 on
object borders as PASCAL VOC marks them), and instances (label, mask, xyxy box).

Everything is a pure function of (seed, split, index): the same scene comes out on any machine.
Train / val / test draw from disjoint source digits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from PIL import Image
from scipy import ndimage

from tasks.data.splits import SPLITS, stratified_split

NUM_DIGIT_CLASSES = 10
IGNORE = 255
#: ``owner`` value of crowd pixels (regular digits are 0, 1, ...; background -1)
CROWD = -2


@dataclass
class Instance:
    """One digit in a scene (or a crowd of them): its class (0-9), its visible mask, its xyxy
    box and whether it is a crowd region (COCO's ``iscrowd``: many small objects of one class
    annotated as one region, which COCO evaluation neither rewards nor punishes)."""

    label: int
    mask: np.ndarray
    box: tuple[float, float, float, float]
    crowd: bool = False


@dataclass
class Scene:
    """An RGB image (H, W, 3 uint8), its semantic mask (H, W uint8) and its instances."""

    image: np.ndarray
    semantic: np.ndarray
    instances: list[Instance] = field(default_factory=list)


def _source_split(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Disjoint, stratified 60/20/20 split of the source digits."""
    return stratified_split(labels, np.random.default_rng([seed, 7]))


class DigitScenes:
    """Deterministic generator of digit scenes.

    Args:
        size: canvas side in pixels.
        digits: (min, max) digits per scene.
        digit_size: (min, max) side of an upscaled digit in pixels.
        seed: generator seed (also fixes the source split).
        crowd_rate: share of scenes that also hold a crowd region: 4-7 small digits of one
            class packed together under the regular digits, one :class:`Instance` with
            ``crowd=True``. Drawn from a random stream of its own, so the regular digits are the
            same with or without crowds (0, the default, gives exactly the scenes of before).
    """

    def __init__(
        self,
        size: int = 64,
        digits: tuple[int, int] = (1, 4),
        digit_size: tuple[int, int] = (16, 30),
        seed: int = 0,
        crowd_rate: float = 0.0,
    ) -> None:
        if size < digit_size[1] or digits[0] < 1 or digits[0] > digits[1]:
            raise ValueError("scene size must hold the largest digit and 1 <= min digits <= max digits")
        if not 0.0 <= crowd_rate <= 1.0:
            raise ValueError("crowd_rate must lie in [0, 1]")
        self.size, self.digits, self.digit_size, self.seed = size, digits, digit_size, seed
        self.crowd_rate = crowd_rate

    @cached_property
    def _digits(self) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import load_digits

        data = load_digits()
        return data.images.astype(np.float32) / 16.0, data.target.astype(np.int64)

    @cached_property
    def sources(self) -> dict[str, np.ndarray]:
        """Indices of the source digits each split draws from (disjoint)."""
        return _source_split(self._digits[1], self.seed)

    def scene(self, split: str, index: int) -> Scene:
        """Scene number ``index`` of ``split``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        rng = np.random.default_rng([self.seed, SPLITS.index(split), index])
        images, labels = self._digits
        size = self.size
        canvas = rng.uniform(0.0, 0.25) + 0.08 * rng.standard_normal((size, size, 3))
        for _ in range(rng.integers(2, 6)):  # clutter: faint bars and blobs, not digits
            y0, x0 = rng.integers(0, size, 2)
            h, w = rng.integers(2, size // 3, 2)
            canvas[y0 : y0 + h, x0 : x0 + w] += rng.uniform(0.05, 0.3, 3)
        owner = np.full((size, size), -1, dtype=np.int64)  # which digit is visible where
        crowd_label = self._draw_crowd(canvas, owner, split, index)
        placed: list[tuple[int, np.ndarray]] = []  # (digit class, full glyph shape)
        for _ in range(rng.integers(self.digits[0], self.digits[1] + 1)):
            source = int(rng.choice(self.sources[split]))
            side = int(rng.integers(self.digit_size[0], self.digit_size[1] + 1))
            glyph = np.asarray(Image.fromarray(images[source]).resize((side, side), Image.BILINEAR))
            shape = glyph > 0.3
            for _attempt in range(20):  # avoid covering more than a third of an earlier digit
                y, x = rng.integers(0, size - side + 1, 2)
                window = owner[y : y + side, x : x + side]
                if all((window[shape] == k).sum() < 0.33 * m.sum() for k, (_, m) in enumerate(placed)):
                    break
            color = rng.uniform(0.55, 1.0, 3)
            region = canvas[y : y + side, x : x + side]
            region[shape] = glyph[shape, None] * color + (1 - glyph[shape, None]) * region[shape]
            window = owner[y : y + side, x : x + side]
            window[shape] = len(placed)
            placed.append((int(labels[source]), shape))
        image = (np.clip(canvas + 0.04 * rng.standard_normal(canvas.shape), 0, 1) * 255).astype(np.uint8)
        semantic = np.zeros((size, size), dtype=np.uint8)
        instances = []
        crowd = owner == CROWD
        if crowd_label is not None and crowd.sum() >= 4:
            semantic[crowd] = crowd_label + 1
            instances.append(Instance(crowd_label, crowd, _box(crowd), crowd=True))
        for k, (label, _) in enumerate(placed):
            mask = owner == k
            if mask.sum() < 4:
                continue  # hidden under later digits
            semantic[mask] = label + 1
            instances.append(Instance(label, mask, _box(mask)))
        semantic[_borders(semantic)] = IGNORE
        return Scene(image, semantic, instances)

    def _draw_crowd(self, canvas: np.ndarray, owner: np.ndarray, split: str, index: int) -> int | None:
        """With probability ``crowd_rate``, paint a crowd of small digits of one class into
        ``canvas`` and mark its pixels :data:`CROWD` in ``owner``; returns its class or ``None``."""
        if self.crowd_rate == 0.0:
            return None
        rng = np.random.default_rng([self.seed, SPLITS.index(split), index, 1])  # a stream of its own
        if rng.random() >= self.crowd_rate:
            return None
        images, labels = self._digits
        label = int(rng.integers(0, NUM_DIGIT_CLASSES))
        sources = self.sources[split][labels[self.sources[split]] == label]
        y0, x0 = rng.integers(0, self.size - 24, 2)
        for _ in range(rng.integers(4, 8)):
            side = int(rng.integers(7, 12))
            glyph = np.asarray(
                Image.fromarray(images[int(rng.choice(sources))]).resize((side, side), Image.BILINEAR)
            )
            shape = glyph > 0.3
            y, x = y0 + rng.integers(0, 24 - side + 1), x0 + rng.integers(0, 24 - side + 1)
            region = canvas[y : y + side, x : x + side]
            color = rng.uniform(0.55, 1.0, 3)
            region[shape] = glyph[shape, None] * color + (1 - glyph[shape, None]) * region[shape]
            owner[y : y + side, x : x + side][shape] = CROWD
        return label


def _box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The xyxy box of a non-empty mask (pixel edges)."""
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _borders(semantic: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood holds another class (VOC's 'void' outline)."""
    high = ndimage.maximum_filter(semantic, size=3, mode="nearest")
    low = ndimage.minimum_filter(semantic, size=3, mode="nearest")
    return high != low
