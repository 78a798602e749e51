"""Person crops and heatmaps, as SimpleBaseline does it: a box widened to the input's aspect ratio
and padded, resized to the network's input; Gaussian targets at a quarter of its resolution;
argmax decoding with the quarter-pixel shift toward the higher neighbour.

Coordinates are continuous: pixel i of an image covers [i, i + 1); the centre of heatmap pixel
j lies at heatmap coordinate j.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

#: The value a target heatmap holds for a keypoint without a label (its weight is 0): the
#: ``heatmap`` adapter leaves such keypoints out of the loss, value and gradient.
IGNORED = -1.0


def crop_box(bbox: tuple[float, float, float, float], aspect: float, padding: float = 1.25) -> np.ndarray:
    """The crop of a person's xywh ``bbox``: centred on it, widened to ``aspect`` (width /
    height of the network input) and enlarged by ``padding``; xyxy."""
    x, y, w, h = bbox
    cx, cy = x + w / 2, y + h / 2
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    w, h = w * padding, h * padding
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def crop(image: Image.Image, box: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The region ``box`` (xyxy, may reach past the image: black there) resized to ``size``
    (H, W) with PIL's antialiasing bilinear filter; a float (3, H, W) tensor in [0, 1]."""
    width, height = image.size
    x0, y0, x1, y1 = box
    left, top = max(0, int(np.ceil(-x0))), max(0, int(np.ceil(-y0)))
    right, bottom = max(0, int(np.ceil(x1 - width))), max(0, int(np.ceil(y1 - height)))
    if left or top or right or bottom:
        padded = Image.new("RGB", (width + left + right, height + top + bottom))
        padded.paste(image, (left, top))
        image, box = padded, box + np.array([left, top, left, top])
    resized = image.resize((size[1], size[0]), Image.BILINEAR, box=tuple(float(v) for v in box))
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def to_heatmap(points: np.ndarray, box: np.ndarray, size: tuple[int, int], stride: int) -> np.ndarray:
    """Image (x, y) points -> heatmap coordinates of the crop ``box`` resized to ``size``."""
    x0, y0, x1, y1 = box
    scale = np.array([size[1] / (x1 - x0), size[0] / (y1 - y0)])
    return (points - np.array([x0, y0])) * scale / stride - 0.5


def to_image(points: np.ndarray, box: np.ndarray, size: tuple[int, int], stride: int) -> np.ndarray:
    """Heatmap coordinates of a crop -> image (x, y): the inverse of :func:`to_heatmap`."""
    x0, y0, x1, y1 = box
    scale = np.array([(x1 - x0) / size[1], (y1 - y0) / size[0]])
    return (np.asarray(points) + 0.5) * stride * scale + np.array([x0, y0])


def gaussian_targets(
    keypoints: np.ndarray, box: np.ndarray, size: tuple[int, int], stride: int, sigma: float = 2.0
) -> torch.Tensor:
    """Target heatmaps (K, H / stride, W / stride): a Gaussian of peak 1 and ``sigma`` heatmap
    pixels at each labelled keypoint's sub-pixel position; :data:`IGNORED` everywhere for a
    keypoint that is not labelled (v = 0) or falls outside the crop (weight 0)."""
    h, w = size[0] // stride, size[1] // stride
    centres = to_heatmap(keypoints[:, :2], box, size, stride)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    maps = np.full((len(keypoints), h, w), IGNORED, dtype=np.float32)
    for k, ((cx, cy), v) in enumerate(zip(centres, keypoints[:, 2])):
        if v > 0 and -0.5 <= cx < w - 0.5 and -0.5 <= cy < h - 0.5:
            maps[k] = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    return torch.from_numpy(maps)


def decode(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Peaks of (N, K, H, W) heatmaps: heatmap (x, y) per keypoint (N, K, 2), moved a quarter
    pixel toward the higher neighbour in each direction, and the peak values (N, K)."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    values, index = flat.max(dim=2)
    x, y = (index % w).float(), torch.div(index, w, rounding_mode="floor").float()
    xi, yi = x.long(), y.long()

    def at(dy: int, dx: int) -> torch.Tensor:
        rows, cols = (yi + dy).clamp(0, h - 1), (xi + dx).clamp(0, w - 1)
        return flat.gather(2, (rows * w + cols).unsqueeze(2)).squeeze(2)

    inside_x, inside_y = (xi > 0) & (xi < w - 1), (yi > 0) & (yi < h - 1)
    x = x + 0.25 * torch.sign(at(0, 1) - at(0, -1)) * inside_x
    y = y + 0.25 * torch.sign(at(1, 0) - at(-1, 0)) * inside_y
    return torch.stack([x, y], dim=2), values
