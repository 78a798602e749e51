"""Built-in data for pose: "stick figures" with COCO's 17 keypoints and skeleton.

Articulated figures drawn from a random pose (limb angles, lean, rotation), scale and limb
thickness, several per image over clutter and noise. The person's left side is drawn in warm
colours and its right side in cool ones, and the face carries its eyes, ears and nose, so left
and right can be told apart as a photo lets one tell them (a symmetric stick figure could not).
Labels follow COCO: ``v = 2`` visible, ``v = 1`` labelled but hidden (under an occluder or a
figure drawn later), ``v = 0`` not labelled (outside the image, or left out as annotators do);
some figures are too small to label at all (``num_keypoints == 0``, a box only, as COCO's
distant people) and some images hold nobody.

Everything is a pure function of (seed, split, index); splits differ by their random stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from tasks.data.splits import SPLITS

#: COCO's keypoint names, in COCO's order.
KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
#: COCO's skeleton: pairs of 1-based keypoint indices.
SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
#: The limbs drawn, (from, to) 0-based, with the side that colours them (l, r or c: centre).
LIMBS = (
    (5, 7, "l"), (7, 9, "l"), (6, 8, "r"), (8, 10, "r"), (11, 13, "l"), (13, 15, "l"), (12, 14, "r"),
    (14, 16, "r"), (5, 11, "l"), (6, 12, "r"), (5, 6, "c"), (11, 12, "c"),
)  # fmt: skip


@dataclass
class Person:
    """One figure: keypoints (17, 3) as COCO writes them (x, y, v), its visible mask, xyxy box."""

    keypoints: np.ndarray
    mask: np.ndarray
    box: tuple[float, float, float, float]

    @property
    def num_keypoints(self) -> int:
        """Labelled keypoints (v > 0)."""
        return int((self.keypoints[:, 2] > 0).sum())


@dataclass
class FigureScene:
    """An RGB image (H, W, 3 uint8) and its people."""

    image: np.ndarray
    persons: list[Person]


def _pose(rng: np.random.Generator, height: float) -> np.ndarray:
    """17 keypoints (x, y) of an upright figure ``height`` pixels tall, hips at the origin."""

    def at(origin, length, degrees):  # an angle from straight down, counter-clockwise on screen
        a = math.radians(degrees)
        return origin + length * np.array([math.sin(a), math.cos(a)])

    h = height
    lean = rng.normal(0, 10)
    neck = at(np.zeros(2), -0.32 * h, lean)  # upwards
    side = np.array([math.cos(math.radians(lean)), -math.sin(math.radians(lean))])
    # the person faces the camera: its left side is on the image's right
    points = np.zeros((17, 2))
    points[5], points[6] = neck + 0.12 * h * side, neck - 0.12 * h * side
    points[11], points[12] = 0.08 * h * side, -0.08 * h * side
    for shoulder, elbow, wrist, sign in ((5, 7, 9, 1), (6, 8, 10, -1)):
        upper = rng.uniform(-20, 160) * sign
        points[elbow] = at(points[shoulder], 0.17 * h, upper)
        points[wrist] = at(points[elbow], 0.15 * h, upper + sign * rng.uniform(0, 120))
    for hip, knee, ankle, sign in ((11, 13, 15, 1), (12, 14, 16, -1)):
        thigh = rng.uniform(-15, 45) * sign
        points[knee] = at(points[hip], 0.24 * h, thigh)
        points[ankle] = at(points[knee], 0.23 * h, thigh - sign * rng.uniform(0, 60))
    up = -at(np.zeros(2), 1.0, lean)
    nose = neck + 0.13 * h * up
    points[0] = nose
    points[1], points[2] = nose + 0.035 * h * (up + side), nose + 0.035 * h * (up - side)
    points[3], points[4] = nose + 0.07 * h * side, nose - 0.07 * h * side
    return points


def _rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return points @ rotation.T


class StickFigures:
    """Deterministic generator of stick-figure scenes.

    Args:
        size: canvas side in pixels.
        figures: (min, max) labelled figures per image.
        height: (min, max) figure height in pixels.
        seed: generator seed.
        empty_rate: share of images with nobody in them.
        tiny_rate: chance that an image also holds a distant figure too small to label.
    """

    def __init__(
        self,
        size: int = 128,
        figures: tuple[int, int] = (1, 3),
        height: tuple[int, int] = (48, 110),
        seed: int = 0,
        empty_rate: float = 0.05,
        tiny_rate: float = 0.15,
    ) -> None:
        if figures[0] < 0 or figures[0] > figures[1]:
            raise ValueError("figures must be 0 <= min <= max")
        self.size, self.figures, self.height, self.seed = size, figures, height, seed
        self.empty_rate, self.tiny_rate = empty_rate, tiny_rate

    def scene(self, split: str, index: int) -> FigureScene:
        """Scene number ``index`` of ``split``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
        rng = np.random.default_rng([self.seed, 100 + SPLITS.index(split), index])
        size = self.size
        canvas = Image.fromarray(self._background(rng))
        draw = ImageDraw.Draw(canvas)
        owner = Image.new("L", (size, size), 0)  # 1 + which figure is visible where
        owner_draw = ImageDraw.Draw(owner)
        count = (
            0 if rng.random() < self.empty_rate else int(rng.integers(self.figures[0], self.figures[1] + 1))
        )
        placed: list[tuple[np.ndarray, bool]] = []  # (keypoints, labelled)
        if rng.random() < self.tiny_rate:
            placed.append((self._figure(rng, draw, owner_draw, len(placed) + 1, tiny=True), False))
        for _ in range(count):
            placed.append((self._figure(rng, draw, owner_draw, len(placed) + 1, tiny=False), True))
        occluders = [self._occluder(rng, draw, owner_draw) for _ in range(rng.integers(0, 3))]
        image = np.asarray(canvas, dtype=np.float32) / 255.0
        image = np.clip(image + 0.05 * rng.standard_normal(image.shape), 0, 1)
        owners = np.asarray(owner)
        persons = []
        for k, (points, labelled) in enumerate(placed, 1):
            mask = owners == k
            if mask.sum() < 6:
                continue  # hidden by what came later
            ys, xs = np.nonzero(mask)
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            keypoints = np.zeros((17, 3))
            if labelled:
                keypoints = self._label(rng, points, owners, k, occluders)
            persons.append(Person(keypoints, mask, box))
        return FigureScene((image * 255).astype(np.uint8), persons)

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        size = self.size
        canvas = rng.uniform(0.05, 0.35) + 0.06 * rng.standard_normal((size, size, 3))
        for _ in range(rng.integers(3, 8)):  # clutter: bars and blobs in grey-green tones
            y0, x0 = rng.integers(0, size, 2)
            h, w = rng.integers(3, size // 4, 2)
            canvas[y0 : y0 + h, x0 : x0 + w] += rng.uniform(0.05, 0.25) * np.array([0.8, 1.0, 0.8])
        return (np.clip(canvas, 0, 1) * 255).astype(np.uint8)

    def _figure(self, rng, draw, owner_draw, number: int, tiny: bool) -> np.ndarray:
        """Draw one figure; returns its 17 keypoints (x, y) in image coordinates."""
        height = rng.uniform(12, 22) if tiny else rng.uniform(*self.height)
        points = _rotate(_pose(rng, height), rng.uniform(-30, 30))
        centre = rng.uniform([0.1 * self.size, 0.3 * self.size], [0.9 * self.size, 0.85 * self.size])
        points = points + centre
        width = max(2, round(height * rng.uniform(0.07, 0.11)))
        warm = (rng.uniform(0.75, 1.0), rng.uniform(0.25, 0.55), rng.uniform(0.05, 0.3))
        cool = (rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.65), rng.uniform(0.75, 1.0))
        centre_colour = (rng.uniform(0.7, 1.0),) * 3
        colours = {"l": warm, "r": cool, "c": centre_colour}
        torso = [tuple(points[i]) for i in (5, 6, 12, 11)]  # shoulders and hips: the trunk's outline
        draw.polygon(torso, fill=tuple(int(255 * c * 0.8) for c in centre_colour))
        owner_draw.polygon(torso, fill=number)
        for a, b, side in LIMBS:
            line = [tuple(points[a]), tuple(points[b])]
            draw.line(line, fill=tuple(int(255 * c) for c in colours[side]), width=width)
            owner_draw.line(line, fill=number, width=width)
        head = points[:5].mean(axis=0)  # the face: nose, eyes and ears
        radius = 0.09 * height
        box = [head[0] - radius, head[1] - radius, head[0] + radius, head[1] + radius]
        draw.ellipse(box, fill=tuple(int(255 * c) for c in centre_colour))
        owner_draw.ellipse(box, fill=number)
        dot = max(1.0, 0.02 * height)
        for index, colour in ((0, (40, 40, 40)), (1, (200, 60, 20)), (2, (20, 60, 200))):
            x, y = points[index]
            draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=colour)  # nose and eyes
        for index, side in ((3, "l"), (4, "r")):
            x, y = points[index]
            draw.ellipse(
                [x - 1.5 * dot, y - 1.5 * dot, x + 1.5 * dot, y + 1.5 * dot],
                fill=tuple(int(255 * c) for c in colours[side]),
            )
        return points

    def _occluder(self, rng, draw, owner_draw) -> tuple[float, float, float, float]:
        size = self.size
        x0, y0 = rng.uniform(0, size, 2)
        w, h = rng.uniform(8, size / 4, 2)
        box = (x0, y0, x0 + w, y0 + h)
        draw.rectangle(box, fill=tuple(int(c) for c in rng.integers(30, 120, 3)))
        owner_draw.rectangle(box, fill=0)
        return box

    def _label(self, rng, points: np.ndarray, owners: np.ndarray, number: int, occluders) -> np.ndarray:
        """COCO keypoint labels: v = 0 outside the image or left out, 1 hidden, 2 visible."""
        size = self.size
        keypoints = np.zeros((17, 3))
        for j, (x, y) in enumerate(points):
            if not (0 <= x < size and 0 <= y < size) or rng.random() < 0.04:
                continue  # v = 0: (0, 0, 0), as COCO writes it
            col, row = int(x), int(y)
            window = owners[max(0, row - 1) : row + 2, max(0, col - 1) : col + 2]
            covered = any(a <= x <= c and b <= y <= d for a, b, c, d in occluders)
            visible = not covered and bool((window == number).any())
            keypoints[j] = (round(float(x), 2), round(float(y), 2), 2 if visible else 1)
        return keypoints
