"""det_coco: Faster R-CNN whose RCNN-head classification and box-regression losses are searched.

Two slots: ``cls`` (softmax_onehot over the sampled proposals, C + 1 classes) and ``reg``
(box_iou_areas: the decoded box of each positive proposal against its ground-truth box). The
RPN keeps CE + smooth-L1. Metric: COCO box AP (AP50, AP75 too) through pycocotools.

Proxy (``proxy=trunk``, the default): the searched slots only train the box head, so the trunk
(backbone + RPN + box head) is trained once with the stock losses on the search's training
split and cached on disk (:mod:`tasks.detection.trunk`, keyed by data, model, seed, steps,
batch size and learning rate); each proxy training then trains a freshly initialised box head
for ``steps`` AdamW steps on the frozen trunk's pooled RoI features and scores AP on the
validation split: about 3 s on one core instead of ~17 s (150 steps) to ~35 s for the whole
detector. ``proxy=full`` trains the whole detector end to end instead. Final trainings
(``train``, ``final_evaluate``) are always end to end: ``final_steps`` (900) AdamW steps at the
proxy's constant learning rate, evaluated with the weights' moving average (``final_protocol``
``ema``). ``bench noise`` measured the 95% paired half-width at 5 seeds at 5.7 AP with the old
300 plain steps, 2.5 with a cosine schedule to 0 (at 900 steps the detector is not converged:
the decay costs 6 AP) and 1.3 with ``ema`` (docs/RESULTS.md).

Data: without ``data_root`` the built-in digit scenes are generated once, in the real COCO
2017 layout, into the cache folder (``$GP_LOSS_CACHE`` or ``~/.cache/gp-loss``): search trains
on train2017 and scores on val2017; final numbers come from test2017. With ``data_root`` (a real
COCO 2017 tree) the search holds out the last ``holdout`` fraction of train2017 as its
validation split and final numbers come from val2017 (COCO has no labelled test split).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F

from gp_loss.core.baselines import get_baseline
from gp_loss.core.errors import GpLossError
from tasks.base import HeadProbe, LossFn, ProbeBatch, Slot, Task, choice, holdout_split, option
from tasks.data.cache import builtin
from tasks.data.digit_scenes import DigitScenes
from tasks.data.layouts import write_coco
from tasks.detection.coco_data import CocoDetection, collate, data_identity, to_device
from tasks.detection.evaluation import coco_box_ap, coco_results, detections
from tasks.detection.losses import BOX_LOSSES
from tasks.registry import register_task
from tasks.training import Training, note
from tasks.trunk_cache import shared_trunk_settings, trained_trunk

if TYPE_CHECKING:
    from tasks.detection.trunk import RoiCache

BUILTIN_COUNTS = {"train": 600, "val": 100, "test": 200}
#: ``trunk``: fresh box heads on a frozen trunk trained once (the default, seconds per
#: candidate); ``full``: the whole detector trained end to end (as the final training)
PROXIES = ("trunk", "full")


def builtin_coco(seed: int = 0) -> Path:
    """The built-in digit scenes in COCO layout, generated on first use."""
    return builtin(
        f"digit_scenes_coco_v1_seed{seed}",
        BUILTIN_COUNTS,
        lambda root, n: write_coco(root, DigitScenes(seed=seed), n),
    )


def balanced_correct(labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample correctness weighted by 1 / (classes present x samples of its class): its
    mean is the class-balanced accuracy (mean recall over the classes present)."""
    counts = torch.bincount(targets, minlength=int(targets.max()) + 1).to(torch.float32)
    present = int((counts > 0).sum())
    weight = len(targets) / (present * counts[targets])
    return (labels == targets).float() * weight


def _iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    from torchvision.ops import box_iou

    fixed = torch.cat([pred[:, :2], torch.max(pred[:, 2:], pred[:, :2])], dim=1)
    return box_iou(fixed, target).diagonal()


@register_task("det_coco")
class DetCoco(Task):
    """Object detection on COCO-layout data with searched RCNN-head losses."""

    #: ``--task-option model=NAME`` -> the name of its ``builder(num_classes, weights_path)`` in
    #: :mod:`tasks.detection.model` (imported on first use: torchvision's detection models take
    #: a second or two to import, which every ``gp-loss`` command and worker would pay)
    models: ClassVar[dict[str, str]] = {
        "small": "small_faster_rcnn",
        "fasterrcnn_resnet50_fpn": "resnet50_faster_rcnn",
    }
    #: the targets carry instance masks (a Mask R-CNN task)
    with_masks: ClassVar[bool] = False
    slots = (
        Slot("cls", "softmax_onehot", spatial=False, probe_metric="class-balanced proposal accuracy"),
        Slot("reg", "box_iou_areas", spatial=False, probe_metric="iou"),
    )
    metrics = ("AP", "AP50", "AP75")
    default_budget = "9m"  # + start-up and the last training in flight: under 10 minutes
    default_population = 6
    #: bench fidelity with the trunk proxy (docs/BENCHMARKS.md): Kendall tau with end-to-end
    #: retraining is 0.55 at a quarter of the head's steps, 0.64 at half, 0.70 at all of them
    default_rungs = (0.5, 1.0)
    #: calibrated by ``bench lrp --task det_coco`` (docs/BENCHMARKS.md)
    lrp_defaults: ClassVar[dict] = {
        "shared": {
            "steps": 50,
            "lr": 0.01,
            "eta": {"cls": 0.25, "reg": 0.1},
            "hidden": 64,
            # the slots share the trunk: a loss 440x (union - inter) or 2e6x CE+GIoU's gradient
            # trained to < half the stock pair's AP, 57x and less trained (docs/BENCHMARKS.md)
            "max_grad_ratio": 100,
        },
        "paper": {"steps": 50, "lr": 0.1, "eta": {"cls": 0.3, "reg": 0.05}},
    }
    default_baseline = "ce+smooth_l1"
    #: the tree forms (mean-of-tree scale: the cls tree is F.cross_entropy / (C + 1))
    baselines: ClassVar[dict[str, dict[str, str]]] = {
        "tree:ce+iou": {"cls": get_baseline("cross_entropy").tree, "reg": get_baseline("iou").tree},
        "tree:ce+giou": {"cls": get_baseline("cross_entropy").tree, "reg": get_baseline("giou").tree},
        # at the references' weights: C * the cross-entropy tree is F.cross_entropy itself, and
        # 10 is mmdetection's GIoU weight (its mean runs over all sampled RoIs, the tree's over
        # the positives)
        "tree:weighted:ce+giou": {
            "cls": f"C * {get_baseline('cross_entropy').tree}",
            "reg": f"10 * {get_baseline('giou').tree}",
        },
    }
    #: what slot-wise search holds the slots it is not searching at
    anchor_baseline = "tree:weighted:ce+giou"
    #: the references: ``F.cross_entropy`` with torchvision's stock smooth-L1 (``None``: the
    #: stock loss), or with mmdetection's IoU / GIoU (weight 10) and CIoU (weight 12) on decoded
    #: boxes, averaged over all sampled RoIs (:mod:`tasks.detection.losses`)
    reference_losses: ClassVar[dict] = {
        "ce+smooth_l1": lambda task: {"cls": F.cross_entropy, "reg": None},
        **{
            f"ce+{name}": (lambda task, box=box: {"cls": F.cross_entropy, "reg": box()})
            for name, box in BOX_LOSSES.items()
        },
    }

    def __init__(
        self,
        metric: str | None = None,
        seed: int = 0,
        device: str = "cpu",
        data_root: str | None = None,
        steps: int = 200,
        batch_size: int = 8,
        lr: float = 2e-3,
        model: str = "small",
        weights: str | None = None,
        holdout: float = 0.05,
        final_steps: int | None = 900,
        probe_images: int = 2,
        head_probe_images: int = 8,
        proxy: str = "trunk",
        trunk_steps: int = 300,
        roi_cache_mb: float = 1024,
        head_lr: float = 5e-3,
        final_protocol: str = "ema",
    ) -> None:
        super().__init__(metric, seed, device, final_protocol)
        self._set_training_options(steps, final_steps, batch_size, lr, probe_images, final_factor=2)
        self.model_name, self.weights = choice("detection model", model, tuple(self.models)), weights
        self.head_probe_images = option("head_probe_images", head_probe_images, int, 1)
        self.proxy = choice("det_coco proxy", proxy, PROXIES)
        self.trunk_steps = option("trunk_steps", trunk_steps, int, 1)
        self.roi_cache_mb = option("roi_cache_mb", roi_cache_mb, float, 0)
        self.head_lr = option("head_lr", head_lr, float, 0)
        self._probe_tensors: dict[int, dict] = {}
        self._trunk: dict[str, object] = {}
        masks = self.with_masks
        if data_root is None:
            root = self.builtin_root()
            self.train_set = CocoDetection(root, "train", masks=masks)
            self.val_set = CocoDetection(root, "val", masks=masks)
            self.final_train, self.test_set = self.train_set, CocoDetection(root, "test", masks=masks)
        else:
            root = Path(data_root)
            if not root.is_dir():
                raise GpLossError(f"--data-root {root} is not a folder")
            full = CocoDetection(root, "train", masks=masks)
            search_ids, val_ids = holdout_split(full.image_ids, holdout, f"{root} train2017")
            self.train_set = CocoDetection(root, "train", search_ids, masks=masks)
            self.val_set = CocoDetection(root, "train", val_ids, masks=masks)
            self.final_train, self.test_set = full, CocoDetection(root, "val", masks=masks)
        self.num_classes = self.train_set.num_classes

    def builtin_root(self) -> Path:
        """The built-in data's COCO tree (generated on first use)."""
        return builtin_coco()

    def data_identity(self) -> dict[str, object]:
        """The search's training and validation images."""
        return {"train": data_identity(self.train_set), "val": data_identity(self.val_set)}

    def score(self, dataset: CocoDetection, results: list[dict]) -> dict[str, float]:
        """Every metric of COCO ``results`` on ``dataset`` (COCOeval)."""
        return coco_box_ap(dataset, results)

    # -- model ---------------------------------------------------------------------------------
    def build_model(self, seed: int):
        """A fresh detector, seeded."""
        torch.manual_seed(seed)
        from tasks.detection import model as builders

        build = getattr(builders, self.models[self.model_name])
        model = (
            build(self.num_classes) if self.model_name == "small" else build(self.num_classes, self.weights)
        )
        return model.to(self.device)

    # -- LRP / GEC -----------------------------------------------------------------------------
    def _probe(self, images: int) -> dict:
        """Tensors of a randomly initialised detector's training forward on the first
        ``images`` training images (sampled proposals, their features, logits and boxes)."""
        from tasks.detection.model import head_samples

        if images not in self._probe_tensors:
            model = self.build_model(self.seed + 1)
            batch, targets = collate([self.train_set[i] for i in range(min(images, len(self.train_set)))])
            torch.manual_seed(self.seed + 2)
            samples = head_samples(model, *self._on_device(batch, targets))
            self._probe_tensors[images] = {k: v.cpu() for k, v in samples.items()}
            self._box_coder = model.roi_heads.box_coder
        return self._probe_tensors[images]

    def _on_device(self, images: list, targets: list[dict]) -> tuple[list, list[dict]]:
        return to_device(images, targets, self.device)

    def probe_batches(self) -> dict[str, ProbeBatch]:
        probe = self._probe(self.probe_images)
        return {
            "cls": ProbeBatch(probe["class_logits"], probe["labels"]),
            "reg": ProbeBatch(probe["pred_boxes"], probe["target_boxes"]),
        }

    def probe_heads(self) -> dict[str, HeadProbe]:
        """Box-head features of the proposals sampled on ``head_probe_images`` images: all of
        them for ``cls``, the positives (deltas decoded with their proposals) for ``reg``."""
        from tasks.detection.model import ProposalDecoder

        probe = self._probe(self.head_probe_images)
        positive = probe["labels"] > 0
        decode = ProposalDecoder(probe["positive_proposals"], self._box_coder)
        return {
            "cls": HeadProbe(probe["box_features"], probe["labels"], outputs=self.num_classes + 1),
            "reg": HeadProbe(probe["box_features"][positive], probe["target_boxes"], 4, decode),
        }

    def probe_metric(self, slot: str, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``cls``: correct proposals weighted so that the mean is the class-balanced accuracy
        (background is ~3/4 of the sampled proposals: plain accuracy rewards predicting
        background everywhere); ``reg``: IoU of each predicted box with its target."""
        if slot == "cls":
            return balanced_correct(predictions.argmax(dim=1), targets)
        return _iou(predictions, targets)

    # -- training ------------------------------------------------------------------------------
    def _training(
        self,
        losses: Mapping[str, LossFn | None],
        data: CocoDetection,
        steps: int,
        seed: int,
        stop_invalid: bool,
        recipe: Mapping[str, bool] | None = None,
    ):
        from tasks.detection.model import inject

        def step_losses(model, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
            idx = torch.randint(0, len(data), (self.batch_size,), generator=generator).tolist()
            return model(*self._on_device(*collate([data[i] for i in idx])))

        return Training(
            lambda: inject(self.build_model(seed), *self._slot_losses(losses)),
            step_losses,
            steps=steps,
            seed=seed,
            # Adam, not detection's usual SGD: the searched trees come at arbitrary scales (CE as
            # a tree is CE / C), and a proxy fitness should not hinge on a loss's constant factor
            optimizer=lambda params: torch.optim.AdamW(params, lr=self.lr, weight_decay=1e-4),
            **(recipe or {}),
            stop_invalid=stop_invalid,
            label=f"{self.name} training",
        )

    def proxy_training(self, losses: Mapping[str, LossFn], *, stop_invalid: bool = True) -> Training:
        """``trunk`` proxy: a fresh box head trained on the frozen trunk's RoI features
        (:mod:`tasks.detection.trunk`); ``full``: the whole detector, end to end."""
        from tasks.detection.trunk import fresh_head, head_step

        if self.proxy == "full":
            return self._training(losses, self.train_set, self.steps, self.seed, stop_invalid)
        trunk, rois = self.trunk(), self.trunk_rois("train")

        def step_losses(heads, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
            idx = torch.randint(0, len(rois), (self.batch_size,), generator=generator).tolist()
            return head_step(heads, rois.batch(idx))

        return Training(
            lambda: fresh_head(trunk, *self._slot_losses(losses)),
            step_losses,
            steps=self.steps,
            seed=self.seed,
            optimizer=lambda params: torch.optim.AdamW(params, lr=self.head_lr, weight_decay=1e-4),
            stop_invalid=stop_invalid,
            label=f"{self.name} head training",
        )

    def _slot_losses(self, losses: Mapping[str, LossFn | None]) -> list[LossFn | None]:
        """The losses in :func:`inject`'s order (cls, reg, mask); ``None`` keeps a stock loss."""
        return [losses.get(slot) for slot in ("cls", "reg", "mask")]

    def proxy_metrics(self, model: torch.nn.Module) -> dict[str, float]:
        from tasks.detection.trunk import head_detections

        if self.proxy == "full":
            return self.score(self.val_set, detections(model, self.val_set, self.device))
        trunk, rois = self.trunk(), self.trunk_rois("val")
        results = []
        for start in range(0, len(rois), 32):
            batch = rois.batch(list(range(start, min(start + 32, len(rois)))))
            outputs = head_detections(model, trunk, batch)
            results += coco_results(self.val_set, [r.image_id for r in batch], outputs)
        return self.score(self.val_set, results)

    # -- the proxy's frozen trunk ---------------------------------------------------------------
    def trunk_settings(self) -> dict[str, object]:
        """Everything that shapes the proxy trunk (its cache key)."""
        return shared_trunk_settings(self, data_identity(self.train_set), classes=self.num_classes)

    def trunk(self):
        """The frozen proxy trunk: the detector trained ``trunk_steps`` with the stock losses on
        the search's training split, once per key (cached on disk), then loaded."""
        if "model" not in self._trunk:
            self._trunk["model"] = trained_trunk(
                self,
                "det_trunks",
                "the stock losses",
                lambda: self._training({}, self.train_set, self.trunk_steps, self.seed, True),
            )
        return self._trunk["model"]

    def trunk_rois(self, split: str) -> RoiCache:
        """The frozen trunk's pooled RoIs of the proxy's ``train`` or ``val`` images (kept in
        memory within ``roi_cache_mb``)."""
        from tasks.detection.trunk import RoiCache

        if split not in self._trunk:
            data = self.train_set if split == "train" else self.val_set
            self._trunk[split] = RoiCache(
                self.trunk(), data, self.device, training=split == "train", bound_mb=self.roi_cache_mb
            )
        return self._trunk[split]

    def final_evaluate(self, losses: Mapping[str, LossFn | None], seed: int = 0) -> dict[str, float]:
        """Train ``final_steps`` on the final training set; AP on the test split."""
        recipe = self.final_recipe()
        run = self._training(losses, self.final_train, self.final_steps, seed, True, recipe).advance()
        run.raise_if_diverged(seed)
        note(f"{self.name}: evaluating on {len(self.test_set)} test images")
        return self.score(self.test_set, detections(run.model, self.test_set, self.device))
