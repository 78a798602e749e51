"""Interval (range) analysis of trees, so code generation can drop no-op safety clamps.

``add``, ``mul``, ``square`` and ``exp`` saturate to stay finite; when the analysis proves the operands
cannot reach the saturation point, the clamp is the identity (values and gradients alike) and
the generated code uses the plain torch expression. Bounds are conservative.
"""

from __future__ import annotations

import math

from primitives import EPS, EXP_MAX, MAX_MAGNITUDE

Interval = tuple[float, float]

UNBOUNDED: Interval = (-math.inf, math.inf)

#: Range of the constant terminal ``one`` (adapters declare their inputs' ranges).
ONE: Interval = (1.0, 1.0)


def _prod(a: float, b: float) -> float:
    product = a * b
    return 0.0 if math.isnan(product) else product


def _mul(a: Interval, b: Interval) -> Interval:
    corners = [_prod(x, y) for x in a for y in b]
    return max(min(corners), -MAX_MAGNITUDE), min(max(corners), MAX_MAGNITUDE)


def _log(a: Interval) -> Interval:
    bound = max(-math.log(EPS), math.log(max(abs(a[0]), abs(a[1]), 1.0)))
    return -bound, bound


def _inv(a: Interval) -> Interval:
    if a[0] > EPS:
        return 1.0 / a[1], 1.0 / a[0]
    if a[1] < -EPS:
        return 1.0 / a[1], 1.0 / a[0]
    return -1.0 / EPS if a[0] < 0 else 0.0, 1.0 / EPS if a[1] > 0 else 0.0


def _abs(a: Interval) -> Interval:
    if a[0] >= 0:
        return a
    if a[1] <= 0:
        return -a[1], -a[0]
    return 0.0, max(-a[0], a[1])


def _signed_sqrt(v: float) -> float:
    return math.copysign(math.sqrt(abs(v)), v) if abs(v) > EPS else v / math.sqrt(EPS)


def _square(a: Interval) -> Interval:
    low, high = _abs(a)
    return min(low * low, MAX_MAGNITUDE), min(high * high, MAX_MAGNITUDE)


RULES = {
    "add": lambda a, b: (max(a[0] + b[0], -MAX_MAGNITUDE), min(a[1] + b[1], MAX_MAGNITUDE)),
    "mul": _mul,
    "neg": lambda a: (-a[1], -a[0]),
    "abs": _abs,
    "inv": _inv,
    "log": _log,
    "exp": lambda a: (math.exp(min(a[0], EXP_MAX)), math.exp(min(a[1], EXP_MAX))),
    "tanh": lambda a: (math.tanh(a[0]), math.tanh(a[1])),
    "square": _square,
    "sqrt": lambda a: (_signed_sqrt(a[0]), _signed_sqrt(a[1])),
    "mean_nhw": lambda a: a,
    "mean_c": lambda a: a,
    "maxpool3": lambda a: a,
    "minpool3": lambda a: a,
}


def without_saturation(name: str, args: list[Interval]) -> bool:
    """True if primitive ``name`` provably never saturates on operands in ``args``."""
    if name == "add":
        a, b = args
        return (
            all(math.isfinite(v) for v in (*a, *b))
            and max(abs(a[0] + b[0]), abs(a[1] + b[1])) <= MAX_MAGNITUDE
        )
    if name == "mul":
        a, b = args
        return max(abs(_prod(x, y)) for x in a for y in b) <= MAX_MAGNITUDE and all(
            math.isfinite(v) for v in (*a, *b)
        )
    if name == "square":
        high = max(abs(args[0][0]), abs(args[0][1]))
        return math.isfinite(high) and high * high <= MAX_MAGNITUDE
    if name == "exp":
        return args[0][1] <= EXP_MAX
    return False
