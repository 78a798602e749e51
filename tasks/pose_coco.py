"""pose_coco: top-down keypoint heatmaps with a searched heatmap loss, COCO keypoint layout, OKS AP.

The paper's human-pose experiment (SimpleBaseline-style heatmap regression; MSE 71.5 AP, the
searched loss 72.0). One slot ``hm`` (the ``heatmap`` adapter: predicted heatmaps ``y_hat``, the
Gaussian targets ``y`` and the residual ``r``, (N, 17, H/4, W/4); keypoints without a label left
out of value and gradient). People are cropped from their ground-truth boxes (SimpleBaseline's
aspect ratio and 1.25 padding); targets are Gaussians of sigma 2 heatmap pixels; decoding is the
argmax with the quarter-pixel shift; the metric is COCO keypoint AP (AP50, AP75 too) through
pycocotools' COCOeval with COCO's sigmas.

Data: without ``data_root`` the built-in stick figures (:mod:`tasks.data.stick_figures`) are
generated once in the real COCO 2017 person-keypoints layout into the cache folder; the search
trains on train2017 and scores val2017; final numbers come from test2017. With ``data_root`` (a
real COCO 2017 tree) the search holds out the last ``holdout`` share of train2017 and final
numbers come from val2017. The proxy trains the whole small network (the slot's loss shapes all
of it), ``steps`` Adam steps with a cosine schedule; final trainings run ``final_steps``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from gp_loss.core.baselines import get_baseline
from gp_loss.core.errors import GpLossError
from tasks.base import LossFn, ProbeBatch, Slot, Task, choice, holdout_split, option, split_identity
from tasks.data.cache import builtin
from tasks.data.layouts import write_coco_keypoints
from tasks.data.stick_figures import StickFigures
from tasks.encoded import EncodedSplit, decoder_training
from tasks.pose.coco_keypoints import CocoKeypoints
from tasks.pose.evaluation import oks
from tasks.pose.heatmaps import decode
from tasks.pose.losses import AdaptiveWingLoss, JointsMSELoss, joints_mse, softmax_kl
from tasks.pose.model import MODELS, build_pose_model
from tasks.pose.trunk import fresh_decoder
from tasks.registry import register_task
from tasks.training import Training, note
from tasks.trunk_cache import shared_trunk_settings, trained_trunk

BUILTIN_COUNTS = {"train": 500, "val": 100, "test": 200}
#: the network input (H, W) of each model: SimpleBaseline's 256 x 192, a quarter of it on the CPU
INPUT_SIZES = {"small": (64, 48), "simplebaseline_resnet50": (256, 192)}
#: ImageNet statistics, as torchvision's ResNets expect
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
#: ``trunk``: a fresh decoder on a frozen encoder trained once (the default, seconds per
#: candidate); ``full``: the whole network trained from scratch (as the final training)
PROXIES = ("trunk", "full")


def builtin_coco_keypoints(seed: int = 0) -> Path:
    """The built-in stick figures in the COCO person-keypoints layout, generated on first use."""
    figures = StickFigures(seed=seed)
    return builtin(
        f"stick_figures_coco_v1_seed{seed}",
        BUILTIN_COUNTS,
        lambda root, n: write_coco_keypoints(root, figures, n),
    )


@register_task("pose_coco")
class PoseCoco(Task):
    """Top-down human pose on COCO-layout data; one searched heatmap loss ``hm``."""

    slots = (Slot("hm", "heatmap", spatial=True, probe_metric="OKS of each probe person"),)
    metrics = ("AP", "AP50", "AP75")
    default_budget = "9m"  # + start-up and the last training in flight: under 10 minutes
    default_population = 10
    #: the strongest reference: ``bench noise`` measured Adaptive Wing 43.1 +- 0.5 AP against
    #: JointsMSELoss 35.6 +- 1.2, +7.4 [+6.0, +8.9] paired over 5 seeds (docs/RESULTS.md)
    default_baseline = "adaptive_wing"
    #: the tree forms (the MSE tree is the mean over labelled keypoints' pixels: 2 x
    #: JointsMSELoss x N K / labelled keypoints)
    baselines: ClassVar[dict[str, dict[str, str]]] = {
        "tree:mse": {"hm": get_baseline("heatmap_mse").tree},
        "tree:l1": {"hm": get_baseline("heatmap_l1").tree},
    }
    #: the references (:mod:`tasks.pose.losses`): SimpleBaseline's JointsMSELoss with target
    #: weights, Adaptive Wing at its published constants, and a distribution-matching peer
    reference_losses: ClassVar[dict] = {
        "joints_mse": lambda task: {"hm": JointsMSELoss()},
        "adaptive_wing": lambda task: {"hm": AdaptiveWingLoss()},
        "kl_softmax": lambda task: {"hm": softmax_kl},
    }
    #: No probe_head: the shared protocol's ordering check needs class labels and a 1 x 1 head on
    #: a random network's features cannot place keypoints, so both protocols judge free heatmaps.
    #: eta from ``bench lrp --task pose_coco`` (docs/BENCHMARKS.md): the known-good losses gain
    #: >= 0.89, the negated MSE 0.41 (Adam on free heatmaps leaves the peak on the target's ring)
    lrp_defaults: ClassVar[dict[str, dict[str, float]]] = {
        "shared": {"steps": 50, "lr": 0.1, "eta": 0.6},
        "paper": {"steps": 50, "lr": 0.1, "eta": 0.6},
    }

    def __init__(
        self,
        metric: str | None = None,
        seed: int = 0,
        device: str = "cpu",
        data_root: str | None = None,
        model: str = "small",
        weights: str | None = None,
        steps: int = 300,
        final_steps: int | None = 1000,
        batch_size: int = 32,
        lr: float = 3e-3,
        holdout: float = 0.1,
        probe_images: int = 16,
        sigma: float = 2.0,
        proxy: str = "trunk",
        trunk_steps: int = 800,
        feature_cache_mb: float = 1024,
        final_protocol: str = "annealed",
    ) -> None:
        super().__init__(metric, seed, device, final_protocol)
        self._set_training_options(steps, final_steps, batch_size, lr, probe_images, final_factor=3)
        self.model_name, self.weights = choice("pose model", model, MODELS), weights
        self.sigma = option("sigma", sigma, float, 0.1)
        self.proxy = choice("pose_coco proxy", proxy, PROXIES)
        self.trunk_steps = option("trunk_steps", trunk_steps, int, 1)
        self.feature_cache_mb = option("feature_cache_mb", feature_cache_mb, float, 0)
        self._trunk: dict[str, object] = {}
        settings = {"input_size": INPUT_SIZES[self.model_name], "sigma": self.sigma}
        if data_root is None:
            root = builtin_coco_keypoints()
            self.train_set = CocoKeypoints(root, "train", **settings)
            self.val_set = CocoKeypoints(root, "val", **settings)
            self.final_train, self.test_set = self.train_set, CocoKeypoints(root, "test", **settings)
        else:
            root = Path(data_root)
            if not root.is_dir():
                raise GpLossError(f"--data-root {root} is not a folder")
            full = CocoKeypoints(root, "train", **settings)
            search_ids, val_ids = holdout_split(full.image_ids, holdout, f"{root} train2017")
            self.train_set = CocoKeypoints(root, "train", search_ids, **settings)
            self.val_set = CocoKeypoints(root, "train", val_ids, **settings)
            self.final_train, self.test_set = full, CocoKeypoints(root, "val", **settings)
        if len(self.train_set) == 0:
            raise GpLossError(f"{root}: no labelled person in the search's training images")

    def data_identity(self) -> dict[str, object]:
        """The search's training and validation people."""
        return {
            name: split_identity(data.root, data.split, [p["id"] for p in data.persons])
            for name, data in (("train", self.train_set), ("val", self.val_set))
        }

    # -- model and batches ---------------------------------------------------------------------
    def build_model(self, seed: int) -> torch.nn.Module:
        """A fresh network, seeded."""
        torch.manual_seed(seed)
        return build_pose_model(self.model_name, self.weights).to(self.device)

    def _batch(self, data: CocoKeypoints, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        items = [data[i] for i in indices]
        images = torch.stack([image for image, _ in items])
        images = (images - MEAN[:, None, None]) / STD[:, None, None]
        return images.to(self.device), torch.stack([target for _, target in items]).to(self.device)

    def predict(self, model: torch.nn.Module, data: CocoKeypoints, batch_size: int = 64) -> torch.Tensor:
        """Heatmaps of every person of ``data`` (eval mode), (N, 17, h, w) on the CPU."""
        model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(data), batch_size):
                images, _ = self._batch(data, list(range(start, min(start + batch_size, len(data)))))
                out.append(model(images).float().cpu())
        return torch.cat(out) if out else torch.zeros((0, 17, *data.heatmap_size))

    # -- LRP / GEC -----------------------------------------------------------------------------
    def probe_batches(self) -> dict[str, ProbeBatch]:
        """Heatmaps of a randomly initialised network for ``probe_images`` seeded training people
        that have at least five keypoints labelled inside their crop."""
        generator = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(self.train_set), generator=generator).tolist()
        labelled = [i for i in order if int((self.train_set[i][1] >= 0).flatten(1).all(1).sum()) >= 5]
        images, targets = self._batch(self.train_set, (labelled or order)[: self.probe_images])
        model = self.build_model(self.seed + 1).eval()
        with torch.no_grad():
            heatmaps = model(images)
        return {"hm": ProbeBatch(heatmaps.cpu(), targets.cpu())}

    def probe_metric(self, slot: str, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """OKS of each probe person in heatmap coordinates: keypoints decoded from the predicted
        and the target heatmaps, COCO's sigmas, and the scale of a typical person of the
        training split (its area as a share of its crop, times the heatmap's area; the heatmaps
        alone do not say each person's own)."""
        predicted, _ = decode(predictions)
        truth, _ = decode(targets)
        labelled = (targets >= 0).flatten(2).all(dim=2)
        area = torch.full((len(predictions),), self.typical_area(), dtype=predicted.dtype)
        return oks(predicted, truth, labelled, area)

    def typical_area(self) -> float:
        """A training person's area in heatmap pixels: the median over the training split of its
        area as a share of its crop, times the heatmap's area."""
        if not hasattr(self, "_typical_area"):
            data = self.train_set
            crops = (data.boxes[:, 2] - data.boxes[:, 0]) * (data.boxes[:, 3] - data.boxes[:, 1])
            share = np.array([p["area"] for p in data.persons]) / crops
            h, w = data.heatmap_size
            self._typical_area = float(np.median(share) * h * w)
        return self._typical_area

    # -- training ------------------------------------------------------------------------------
    def _training(
        self,
        losses: Mapping[str, LossFn],
        data: CocoKeypoints,
        steps: int,
        seed: int,
        stop_invalid: bool,
        recipe: Mapping[str, bool] | None = None,
    ) -> Training:
        loss_fn = losses["hm"]

        def step_losses(model, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
            idx = torch.randint(0, len(data), (self.batch_size,), generator=generator).tolist()
            images, targets = self._batch(data, idx)
            return {"hm": loss_fn(model(images), targets)}

        return Training(
            lambda: self.build_model(seed),
            step_losses,
            steps=steps,
            seed=seed,
            optimizer=lambda params: torch.optim.Adam(params, lr=self.lr),
            **{"cosine": True, **(recipe or {})},
            stop_invalid=stop_invalid,
            label=f"{self.name} training",
        )

    def proxy_training(self, losses: Mapping[str, LossFn], *, stop_invalid: bool = True) -> Training:
        """``trunk`` proxy: a fresh decoder trained on the frozen encoder's features of the
        training people (:mod:`tasks.pose.trunk`); ``full``: the whole network."""
        if self.proxy == "full":
            return self._training(losses, self.train_set, self.steps, self.seed, stop_invalid)
        trunk, loss_fn = self.trunk(), losses["hm"]
        return decoder_training(
            self,
            self.encoded("train"),
            lambda: fresh_decoder(trunk),
            lambda decoder, features, targets: {"hm": loss_fn(decoder(features), targets)},
            lr=self.lr,
            stop_invalid=stop_invalid,
        )

    def proxy_metrics(self, model: torch.nn.Module) -> dict[str, float]:
        if self.proxy == "full":
            return self.val_set.evaluate(self.predict(model, self.val_set))
        heatmaps = [predicted for predicted, _ in self.encoded("val").predict(model)]
        return self.val_set.evaluate(
            torch.cat(heatmaps) if heatmaps else torch.zeros((0, 17, *self.val_set.heatmap_size))
        )

    # -- the proxy's frozen trunk ---------------------------------------------------------------
    def trunk_settings(self) -> dict[str, object]:
        """Everything that shapes the proxy trunk (its cache key)."""
        data = self.train_set
        identity = split_identity(data.root, data.split, [p["id"] for p in data.persons])
        return shared_trunk_settings(self, identity, input_size=list(data.input_size), sigma=self.sigma)

    def trunk(self) -> torch.nn.Module:
        """The frozen proxy trunk: the network trained ``trunk_steps`` with the joints MSE on the
        search's training split, once per key (cached on disk), then loaded."""
        if "model" not in self._trunk:
            self._trunk["model"] = trained_trunk(
                self,
                "pose_trunks",
                "the joints MSE",
                lambda: self._training({"hm": joints_mse}, self.train_set, self.trunk_steps, self.seed, True),
            )
        return self._trunk["model"]

    def encoded(self, split: str) -> EncodedSplit:
        """The frozen encoder's features of the proxy's ``train`` or ``val`` people (kept in
        memory within ``feature_cache_mb``)."""
        if split not in self._trunk:
            data = self.train_set if split == "train" else self.val_set
            self._trunk[split] = EncodedSplit(
                self.trunk().encoder.eval(),
                len(data),
                lambda idx: self._batch(data, idx),
                bound_mb=self.feature_cache_mb,
            )
        return self._trunk[split]

    def final_evaluate(self, losses: Mapping[str, LossFn], seed: int = 0) -> dict[str, float]:
        """Train ``final_steps`` on the final training set with ``seed``; keypoint AP on test."""
        recipe = self.final_recipe()
        run = self._training(losses, self.final_train, self.final_steps, seed, True, recipe).advance()
        run.raise_if_diverged(seed)
        note(f"{self.name}: evaluating on {len(self.test_set)} test people")
        return self.test_set.evaluate(self.predict(run.model, self.test_set))
