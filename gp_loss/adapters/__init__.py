"""Input adapters: one :class:`Adapter` class per file, found by name in :data:`ADAPTERS`.

A new adapter is one file: subclass :class:`Adapter`, decorate it with :func:`register_adapter`
and import the file before use (``--import`` on the command line).
"""

from __future__ import annotations

from gp_loss.adapters.base import (
    ADAPTERS,
    Adapter,
    adapter_class,
    get_adapter,
    register_adapter,
    valid_mean,
)
from gp_loss.adapters.binary import SigmoidBinary, sigmoid_binary
from gp_loss.adapters.box_areas import BoxIouAreas, box_iou_areas
from gp_loss.adapters.heatmap import Heatmap, heatmap
from gp_loss.adapters.probabilities import SoftmaxOneHot, softmax_onehot
from gp_loss.adapters.regression import Regression, regression

__all__ = [
    "ADAPTERS",
    "Adapter",
    "BoxIouAreas",
    "Heatmap",
    "Regression",
    "SigmoidBinary",
    "SoftmaxOneHot",
    "adapter_class",
    "box_iou_areas",
    "get_adapter",
    "heatmap",
    "register_adapter",
    "regression",
    "sigmoid_binary",
    "softmax_onehot",
    "valid_mean",
]
