"""COCO 2017 person keypoints read through pycocotools, as top-down person crops with heatmaps.

The same loader reads real COCO (``annotations/person_keypoints_{split}2017.json`` and
``{split}2017/``) and the built-in stick figures written in that layout. Each item is one
labelled person (``iscrowd`` 0, ``num_keypoints`` > 0, a box with area): the crop of its
ground-truth box (SimpleBaseline's aspect ratio and padding) and its target heatmaps.
People without labelled keypoints and images without people are kept out of the items, and
stay in the evaluation, where COCOeval ignores them as COCO's protocol does.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gp_loss.core.errors import GpLossError
from tasks.pose.evaluation import coco_keypoint_ap
from tasks.pose.heatmaps import crop, crop_box, decode, gaussian_targets, to_image

NUM_KEYPOINTS = 17


class CocoKeypoints(torch.utils.data.Dataset):
    """Labelled people of ``root``'s ``split``, as ``(crop, target heatmaps)``.

    Args:
        root: a COCO 2017 tree.
        split: ``train``, ``val`` or ``test``.
        image_ids: the images to use (default: all of the split).
        input_size: the network's input (H, W); the heatmaps are ``stride`` times smaller.
        sigma: the target Gaussians' sigma in heatmap pixels.
        cache_mb: keep every crop in memory when they fit (read once), else read each time.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        image_ids: list[int] | None = None,
        *,
        input_size: tuple[int, int] = (64, 48),
        stride: int = 4,
        sigma: float = 2.0,
        cache_mb: float = 1024,
    ) -> None:
        from pycocotools.coco import COCO

        self.root, self.split = Path(root), split
        self.folder = self.root / f"{split}2017"
        annotations = self.root / "annotations" / f"person_keypoints_{split}2017.json"
        if not annotations.is_file():
            raise GpLossError(
                f"{self.root} is not a COCO 2017 keypoints tree: missing annotations/{annotations.name}"
            )
        if not self.folder.is_dir():
            raise GpLossError(f"{self.root} is not a COCO 2017 keypoints tree: missing {self.folder.name}/")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.coco = COCO(str(annotations))
        except (ValueError, KeyError, TypeError) as err:
            raise GpLossError(f"{annotations}: not a COCO annotation file ({err})") from None
        people = [
            c
            for c in self.coco.loadCats(self.coco.getCatIds())
            if len(c.get("keypoints", [])) == NUM_KEYPOINTS
        ]
        if not people:
            raise GpLossError(f"{annotations}: no category with COCO's {NUM_KEYPOINTS} keypoints")
        self.category_id = int(people[0]["id"])
        self.image_ids = sorted(self.coco.getImgIds()) if image_ids is None else list(image_ids)
        self.input_size, self.stride, self.sigma = tuple(input_size), stride, sigma
        self.persons = [
            ann
            for ann in self.coco.loadAnns(
                self.coco.getAnnIds(imgIds=self.image_ids, catIds=[self.category_id])
            )
            if not ann.get("iscrowd")
            and ann.get("num_keypoints", 0) > 0
            and ann["bbox"][2] > 0
            and ann["bbox"][3] > 0
        ]
        aspect = self.input_size[1] / self.input_size[0]
        self.boxes = (
            np.stack([crop_box(a["bbox"], aspect) for a in self.persons])
            if self.persons
            else np.zeros((0, 4))
        )
        per_item = 4 * (
            3 * self.input_size[0] * self.input_size[1]
            + NUM_KEYPOINTS * self.heatmap_size[0] * self.heatmap_size[1]
        )
        self._cached: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        if per_item * len(self.persons) <= cache_mb * 2**20:
            self._cached = self._read(range(len(self.persons)))

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(H, W) of the heatmaps."""
        return self.input_size[0] // self.stride, self.input_size[1] // self.stride

    def __len__(self) -> int:
        return len(self.persons)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cached is not None:
            return self._cached[index]
        return self._read([index])[0]

    def keypoints(self, index: int) -> np.ndarray:
        """Person ``index``'s ground truth keypoints (17, 3): x, y, v."""
        return np.asarray(self.persons[index]["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)

    def _read(self, indices) -> list[tuple[torch.Tensor, torch.Tensor]]:
        by_image: dict[int, list[int]] = defaultdict(list)
        for i in indices:
            by_image[self.persons[i]["image_id"]].append(i)
        items: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for image_id, members in by_image.items():
            image = self._image(image_id)
            for i in members:
                box = self.boxes[i]
                targets = gaussian_targets(self.keypoints(i), box, self.input_size, self.stride, self.sigma)
                items[i] = (crop(image, box, self.input_size), targets)
        return [items[i] for i in indices]

    def _image(self, image_id: int) -> Image.Image:
        info = self.coco.loadImgs(image_id)[0]
        path = self.folder / info["file_name"]
        try:
            return Image.open(path).convert("RGB")
        except OSError as err:
            raise GpLossError(f"cannot read image {path}: {err}") from None

    def results(self, heatmaps: torch.Tensor, indices: list[int] | None = None) -> list[dict]:
        """COCO keypoint results of predicted ``heatmaps`` (N, K, h, w) of the people
        ``indices`` (default: all): peaks mapped back to the image; score = the mean peak."""
        indices = list(range(len(self))) if indices is None else indices
        points, values = decode(heatmaps.detach().float().cpu())
        results = []
        for row, i in enumerate(indices):
            xy = to_image(points[row].numpy(), self.boxes[i], self.input_size, self.stride)
            triples = np.concatenate([xy, np.ones((NUM_KEYPOINTS, 1))], axis=1)
            results.append(
                {
                    "image_id": int(self.persons[i]["image_id"]),
                    "category_id": self.category_id,
                    "keypoints": [round(float(v), 2) for v in triples.flatten()],
                    "score": float(values[row].mean()),
                }
            )
        return results

    def evaluate(self, heatmaps: torch.Tensor) -> dict[str, float]:
        """Keypoint AP, AP50, AP75 of heatmaps predicted for every person (COCOeval)."""
        return coco_keypoint_ap(self.coco, self.image_ids, self.results(heatmaps))
