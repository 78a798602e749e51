"""The four aggregation operators (docs/architecture.md section 2); they keep dims so results broadcast back.

Inputs are (N, C, H, W); non-spatial slots use H = W = 1. An input with fewer dims (a broadcast
leaf such as a constant) is returned unchanged by the reductions that need those dims.
"""

from __future__ import annotations

import sympy
import torch
import torch.nn.functional as F

from primitives._registry import register

Tensor = torch.Tensor


def _is_nchw(x: Tensor) -> bool:
    return x.dim() == 4


@register(
    "mean_nhw",
    1,
    sympy_fn=sympy.Function("mean_NHW"),
    words="the mean over samples and positions of {0}",
    latex=r"\operatorname{{mean}}_{{NHW}}\left({0}\right)",
    kind="aggregation",
)
def mean_nhw(x: Tensor) -> Tensor:
    """Mean over N, H, W: (N, C, H, W) -> (1, C, 1, 1)."""
    return x.mean(dim=[0, 2, 3], keepdim=True) if _is_nchw(x) else x


@register(
    "mean_c",
    1,
    sympy_fn=sympy.Function("mean_C"),
    words="the mean over channels of {0}",
    latex=r"\operatorname{{mean}}_{{C}}\left({0}\right)",
    kind="aggregation",
)
def mean_c(x: Tensor) -> Tensor:
    """Mean over C: (N, C, H, W) -> (N, 1, H, W)."""
    return x.mean(dim=[1], keepdim=True) if _is_nchw(x) else x


@register(
    "maxpool3",
    1,
    spatial=True,
    sympy_fn=sympy.Function("maxpool_3"),
    words="the 3x3 maximum of {0}",
    latex=r"\operatorname{{maxpool}}_{{3}}\left({0}\right)",
    kind="aggregation",
)
def maxpool3(x: Tensor) -> Tensor:
    """3x3 max pool, stride 1, padding 1 (same spatial size)."""
    return F.max_pool2d(x, 3, stride=1, padding=1) if _is_nchw(x) else x


@register(
    "minpool3",
    1,
    spatial=True,
    sympy_fn=sympy.Function("minpool_3"),
    words="the 3x3 minimum of {0}",
    latex=r"\operatorname{{minpool}}_{{3}}\left({0}\right)",
    kind="aggregation",
)
def minpool3(x: Tensor) -> Tensor:
    """3x3 min pool, stride 1, padding 1 (same spatial size)."""
    return -F.max_pool2d(-x, 3, stride=1, padding=1) if _is_nchw(x) else x
