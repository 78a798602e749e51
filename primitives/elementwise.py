"""The ten element-wise operators of AutoLoss-Zero (docs/architecture.md section 2), safe in fp32.

Every function is finite with finite gradients for finite inputs: divisions and logs clamp the
magnitude at :data:`EPS`, ``exp`` clamps its input, sums and products saturate at
:data:`MAX_MAGNITUDE`. A tree's value is then finite for any finite inputs; its gradient is on
the adapters' domains, but the chain rule through a deep tree can overflow float32 when inputs
reach +-1e30 (the validity check and stop-invalid catch that: ``bench fuzz``).
"""

from __future__ import annotations

import sympy
import torch

from primitives._registry import register
from primitives.numerics import EPS, EXP_MAX, MAX_MAGNITUDE, SQRT_EPS

Tensor = torch.Tensor


@register(
    "add",
    2,
    sympy_fn=lambda x, y: x + y,
    latex=r"\left({0} + {1}\right)",
    kind="elementwise",
    words="({0} plus {1})",
)
def add(x: Tensor, y: Tensor) -> Tensor:
    """x + y, saturated at +-MAX_MAGNITUDE like ``mul``, so that chains of large sums (of ``exp``
    outputs, of huge box areas) stay finite."""
    return torch.clamp(x + y, -MAX_MAGNITUDE, MAX_MAGNITUDE)


@register(
    "mul", 2, sympy_fn=lambda x, y: x * y, latex=r"{0} \cdot {1}", kind="elementwise", words="({0} times {1})"
)
def mul(x: Tensor, y: Tensor) -> Tensor:
    """x * y, saturated at +-MAX_MAGNITUDE so that the product of two large values stays finite."""
    return torch.clamp(x * y, -MAX_MAGNITUDE, MAX_MAGNITUDE)


@register("neg", 1, sympy_fn=lambda x: -x, latex=r"-{0}", kind="elementwise", words="minus {0}")
def neg(x: Tensor) -> Tensor:
    """-x."""
    return -x


@register(
    "abs",
    1,
    sympy_fn=sympy.Abs,
    latex=r"\left|{0}\right|",
    kind="elementwise",
    words="the absolute value of {0}",
)
def abs_(x: Tensor) -> Tensor:
    """|x|."""
    return torch.abs(x)


class safe_inv(sympy.Function):  # lower case: it prints as the formula's function name
    """Symbolic form of ``inv``: 1/x where x is provably non-zero, else kept unevaluated.

    ``inv(0) = 0``, so ``y * inv(y)`` is the indicator of ``y != 0``, not 1: sympy must not
    cancel it for inputs that can be zero (the one-hot ``y``, the intersection ``I``).
    """

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.Integer(0)
        if x.is_positive or x.is_negative:
            return 1 / x
        return None

    def _latex(self, printer) -> str:
        return r"\operatorname{inv}\left(" + printer._print(self.args[0]) + r"\right)"


@register("inv", 1, sympy_fn=safe_inv, latex=r"\frac{{1}}{{{0}}}", kind="elementwise", words="one over {0}")
def inv(x: Tensor) -> Tensor:
    """Safe 1/x: sign(x) / max(|x|, EPS) (0 at exactly 0)."""
    return torch.sign(x) / torch.clamp(torch.abs(x), min=EPS)


@register(
    "log",
    1,
    sympy_fn=sympy.log,
    latex=r"\log\left({0}\right)",
    kind="elementwise",
    words="the signed log of |{0}|",
)
def log(x: Tensor) -> Tensor:
    """Safe signed log: sign(x) * log(max(|x|, EPS)) (0 at exactly 0)."""
    return torch.sign(x) * torch.log(torch.clamp(torch.abs(x), min=EPS))


@register("exp", 1, sympy_fn=sympy.exp, latex=r"e^{{{0}}}", kind="elementwise", words="e to the {0}")
def exp(x: Tensor) -> Tensor:
    """e^x with the input clamped at EXP_MAX, so the output stays finite in fp32."""
    return torch.exp(torch.clamp(x, max=EXP_MAX))


@register(
    "tanh", 1, sympy_fn=sympy.tanh, latex=r"\tanh\left({0}\right)", kind="elementwise", words="tanh of {0}"
)
def tanh(x: Tensor) -> Tensor:
    """tanh(x)."""
    return torch.tanh(x)


@register(
    "square",
    1,
    sympy_fn=lambda x: x**2,
    latex=r"\left({0}\right)^{{2}}",
    kind="elementwise",
    words="the square of {0}",
)
def square(x: Tensor) -> Tensor:
    """x^2, saturated at MAX_MAGNITUDE."""
    return torch.clamp(x * x, max=MAX_MAGNITUDE)


@register(
    "sqrt",
    1,
    sympy_fn=sympy.sqrt,
    latex=r"\sqrt{{{0}}}",
    kind="elementwise",
    words="the signed square root of |{0}|",
)
def sqrt(x: Tensor) -> Tensor:
    """Signed square root sign(x) * sqrt(|x|); linear below EPS so the gradient stays finite at 0."""
    return torch.where(
        torch.abs(x) > EPS,
        torch.sign(x) * torch.sqrt(torch.clamp(torch.abs(x), min=EPS)),
        x / SQRT_EPS,
    )
