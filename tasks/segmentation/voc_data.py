"""One reader for PASCAL VOC 2012 segmentation trees: the real dataset and the built-in scenes.

Layout read (``root`` is the folder holding ``VOCdevkit``)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png     palette PNG: class indices, 255 = void
    VOCdevkit/VOC2012/ImageSets/Segmentation/<split>.txt

Every listed file is checked when a split is opened, so a malformed tree is one clear error up
front instead of a crash in the middle of a search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gp_loss.core.errors import GpLossError
from tasks.data.cache import builtin
from tasks.data.digit_scenes import NUM_DIGIT_CLASSES, DigitScenes
from tasks.data.layouts import write_voc

IGNORE = 255
#: background + the 20 object classes of PASCAL VOC
VOC_CLASSES = 21
BUILTIN_CLASSES = 1 + NUM_DIGIT_CLASSES
BUILTIN_COUNTS = {"train": 600, "val": 150, "test": 300}
#: images up to this many pixels in total are decoded once and kept in memory
_CACHE_PIXELS = 64e6


def builtin_voc(seed: int = 0) -> Path:
    """The built-in digit scenes in VOC layout, generated on first use; returns the root."""
    return builtin(
        f"digit_scenes_voc_v1_seed{seed}",
        BUILTIN_COUNTS,
        lambda root, n: write_voc(root, DigitScenes(seed=seed), n),
    )


def voc_base(root: str | Path) -> Path:
    """``root/VOCdevkit/VOC2012`` (``root`` may also point at VOCdevkit or VOC2012 itself)."""
    root = Path(root)
    if not root.is_dir():
        raise GpLossError(f"--data-root {root} is not a folder")
    for base in (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root):
        if (base / "ImageSets" / "Segmentation").is_dir():
            return base
    raise GpLossError(
        f"--data-root {root}: no VOCdevkit/VOC2012/ImageSets/Segmentation folder (expected the "
        "PASCAL VOC 2012 layout)"
    )


def has_split(root: str | Path, split: str) -> bool:
    """Whether ``split`` is listed and its first image has a label PNG (VOC's test set has none)."""
    base = voc_base(root)
    listing = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.is_file():
        return False
    ids = listing.read_text().split()
    return bool(ids) and (base / "SegmentationClass" / f"{ids[0]}.png").is_file()


def _read(path: Path, mode: str | None = None) -> Image.Image:
    """An image file, decoded now (a truncated or corrupt file is a one-line error naming it)."""
    try:
        image = Image.open(path)
        image.load()
        return image.convert(mode) if mode else image
    except OSError as err:
        raise GpLossError(f"cannot read {path}: {err}") from None


class VocSegmentation(torch.utils.data.Dataset):
    """Images and class masks of one VOC split (optionally a subset of its ids).

    Items are ``(image, mask)``: uint8 (3, H, W) and int64 (H, W) with 255 on void pixels.

    Args:
        root: folder holding ``VOCdevkit`` (or the VOC2012 folder).
        split: a list in ``ImageSets/Segmentation`` (train, val, trainval, test...).
        ids: keep only these image ids, in this order.
        num_classes: labels must lie in ``[0, num_classes)`` or be 255 (checked on load).
    """

    def __init__(
        self, root: str | Path, split: str, ids: list[str] | None = None, num_classes: int = VOC_CLASSES
    ) -> None:
        self.base = voc_base(root)
        self.split, self.num_classes = split, num_classes
        listing = self.base / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            raise GpLossError(f"{self.base}: no ImageSets/Segmentation/{split}.txt")
        self.ids = listing.read_text().split() if ids is None else list(ids)
        if not self.ids:
            raise GpLossError(f"{listing} lists no images")
        for image_id in self.ids:
            for path in (self._image_path(image_id), self._mask_path(image_id)):
                if not path.is_file():
                    raise GpLossError(f"{listing} lists {image_id!r} but {path} is missing")
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._cacheable = None

    def _image_path(self, image_id: str) -> Path:
        return self.base / "JPEGImages" / f"{image_id}.jpg"

    def _mask_path(self, image_id: str) -> Path:
        return self.base / "SegmentationClass" / f"{image_id}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_id = self.ids[index]
        image = np.asarray(_read(self._image_path(image_id), "RGB"))
        labels = _read(self._mask_path(image_id))
        if labels.mode not in ("P", "L"):
            raise GpLossError(f"{self._mask_path(image_id)} is not a palette or grey PNG of class indices")
        mask = np.asarray(labels).astype(np.int64)
        if mask.shape != image.shape[:2]:
            raise GpLossError(
                f"{self._mask_path(image_id)} is {mask.shape[1]}x{mask.shape[0]}, "
                f"its image {image.shape[1]}x{image.shape[0]}"
            )
        bad = (mask >= self.num_classes) & (mask != IGNORE)
        if bad.any():
            raise GpLossError(
                f"{self._mask_path(image_id)} holds label {int(mask[bad][0])}, "
                f"outside 0..{self.num_classes - 1} and 255"
            )
        return torch.from_numpy(image.copy()).permute(2, 0, 1).contiguous(), torch.from_numpy(mask)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index in self._cache:
            return self._cache[index]
        item = self._load(index)
        if self._cacheable is None:  # decide on the first image: small sets stay in memory
            self._cacheable = item[1].numel() * len(self) <= _CACHE_PIXELS
        if self._cacheable:
            self._cache[index] = item
        return item

    def class_frequencies(self) -> np.ndarray:
        """Share of each class among the valid pixels of the split (C,)."""
        counts = np.zeros(self.num_classes, dtype=np.float64)
        for index in range(len(self)):
            mask = self[index][1].numpy()
            counts += np.bincount(mask[mask != IGNORE], minlength=self.num_classes)[: self.num_classes]
        return counts / max(counts.sum(), 1.0)
