"""The operator library of the search space: pure torch functions with metadata.

This package imports nothing else of gp-loss. ``PRIMITIVES`` maps each name to a
:class:`Primitive` (arity, spatial flag, sympy and LaTeX forms).
"""

from __future__ import annotations

from primitives import aggregation, elementwise  # noqa: F401  (registration side effect)
from primitives._registry import PRIMITIVES, Primitive, get_primitive
from primitives.numerics import EPS, EXP_MAX, MAX_MAGNITUDE

ELEMENTWISE: tuple[str, ...] = tuple(n for n, p in PRIMITIVES.items() if p.kind == "elementwise")
AGGREGATION: tuple[str, ...] = tuple(n for n, p in PRIMITIVES.items() if p.kind == "aggregation")

__all__ = [
    "AGGREGATION",
    "ELEMENTWISE",
    "EPS",
    "EXP_MAX",
    "MAX_MAGNITUDE",
    "PRIMITIVES",
    "Primitive",
    "get_primitive",
]
