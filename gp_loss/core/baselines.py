"""Named baseline losses written as trees, in one registry.

Each equals a torch reference up to the constant factor or offset that the mean-of-tree
convention implies (see each entry's ``relation``); ``tests/gp_loss/test_baselines.py`` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gp_loss.core.errors import GpLossError
from primitives.registry import Registry


@dataclass(frozen=True)
class Baseline:
    """A known loss as a tree.

    Attributes:
        name: registry key (``cross_entropy``, ``giou``...).
        adapter: the input adapter its tree is written for.
        tree: the tree string.
        relation: how it relates to its torch reference.
    """

    name: str
    adapter: str
    tree: str
    relation: str


BASELINES: Registry[Baseline] = Registry("baseline loss", GpLossError)


def register_baseline(name: str, adapter: str, tree: str, relation: str) -> Baseline:
    """Add a baseline; a second registration under the same name is refused."""
    return BASELINES.register(name, Baseline(name, adapter, tree, relation))


def get_baseline(name: str, adapter: str | None = None) -> Baseline:
    """The baseline ``name`` (optionally checking its adapter); errors list the valid names."""
    found = BASELINES.get(name)
    if found is None or (adapter is not None and found.adapter != adapter):
        valid = sorted(n for n, b in BASELINES.items() if adapter is None or b.adapter == adapter)
        raise GpLossError(f"unknown baseline loss {name!r}; known: {', '.join(valid)}")
    return found


register_baseline(
    "cross_entropy", "softmax_onehot", "neg(mul(y, log(y_hat)))", "F.cross_entropy(logits, labels) / C"
)
register_baseline(
    "soft_iou",
    "softmax_onehot",
    "neg(mul(mean_nhw(mul(y_hat, y)), inv(mean_nhw(add(add(y_hat, y), neg(mul(y_hat, y)))))))",
    "soft (Jaccard/Dice-like) IoU loss 1 - mean_c sum(p*y)/sum(p+y-p*y), minus 1",
)
register_baseline(
    "mse", "softmax_onehot", "square(add(y_hat, neg(y)))", "F.mse_loss(softmax(logits), one_hot(labels))"
)
register_baseline("iou", "box_iou_areas", "neg(mul(inter, inv(union)))", "IoU loss 1 - IoU, minus 1")
register_baseline(
    "giou",
    "box_iou_areas",
    "neg(add(mul(inter, inv(union)), mul(union, inv(enclose))))",
    "torchvision.ops.generalized_box_iou_loss(..., reduction='mean') - 2",
)
register_baseline(
    "dice",
    "softmax_onehot",
    "neg(mul(mean_nhw(mul(y_hat, y)), inv(mean_nhw(add(y_hat, y)))))",
    "soft Dice loss 1 - mean_c 2 sum(p*y)/sum(p+y), halved, minus 1/2",
)
register_baseline(
    "focal",
    "softmax_onehot",
    "neg(mul(mul(y, square(add(y, neg(y_hat)))), log(y_hat)))",
    "softmax focal loss (gamma 2) -(1-p_t)^2 log p_t, mean over pixels / C",
)
register_baseline("squared_error", "regression", "square(r)", "F.mse_loss(prediction, target)")
register_baseline("absolute_error", "regression", "abs(r)", "F.l1_loss(prediction, target)")
register_baseline(
    "pseudo_huber",
    "regression",
    "add(sqrt(add(one, square(r))), neg(one))",
    "pseudo-Huber (delta 1) sqrt(1 + r^2) - 1: within 0.5 of F.smooth_l1_loss(beta=1), same slopes",
)
register_baseline(
    "bce",
    "sigmoid_binary",
    "neg(mul(y, log(y_hat)))",
    "F.binary_cross_entropy_with_logits(mask_logits, mask_targets) / 2 (the cross-entropy tree)",
)
register_baseline(
    "binary_dice",
    "sigmoid_binary",
    "neg(mul(mean_nhw(mul(y_hat, y)), inv(mean_nhw(add(y_hat, y)))))",
    "soft Dice over the batch, mean of the foreground's and background's 1 - 2 sum(p*y)/sum(p+y), halved, minus 1/2",
)
register_baseline(
    "heatmap_mse",
    "heatmap",
    "square(r)",
    "MSE over the labelled keypoints' heatmaps: 2 x SimpleBaseline's JointsMSELoss x (N K / labelled keypoints)",
)
register_baseline("heatmap_l1", "heatmap", "abs(r)", "L1 over the labelled keypoints' heatmaps")
