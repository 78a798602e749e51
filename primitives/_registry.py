"""The operator registry: one :class:`Primitive` per elementary tensor operator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch

from primitives.registry import Registry

Tensor = torch.Tensor


@dataclass(frozen=True)
class Primitive:
    """An elementary operator of the search space.

    Attributes:
        name: identifier used in tree strings (``log``, ``mean_nhw``...).
        arity: number of tensor arguments.
        fn: the pure torch function; broadcasting, finite for finite inputs.
        spatial: True if the operator needs real spatial dims (pooling).
        sympy_fn: builds the symbolic form from sympy arguments.
        latex: LaTeX template with ``{0}``, ``{1}`` placeholders for the arguments.
        kind: ``"elementwise"`` or ``"aggregation"``.
        words: the operator in words with ``{0}``, ``{1}`` placeholders (model cards).
    """

    name: str
    arity: int
    fn: Callable[..., Tensor]
    spatial: bool
    sympy_fn: Callable[..., sympy.Expr]
    latex: str
    kind: str
    words: str = ""

    def __call__(self, *args: Tensor) -> Tensor:
        return self.fn(*args)


PRIMITIVES: Registry[Primitive] = Registry("primitive")


def register(
    name: str,
    arity: int,
    *,
    sympy_fn: Callable[..., sympy.Expr],
    latex: str,
    kind: str,
    spatial: bool = False,
    words: str = "",
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator adding a torch function to :data:`PRIMITIVES`; refuses duplicate names."""

    def wrap(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        PRIMITIVES.register(
            name, Primitive(name, arity, fn, spatial, sympy_fn, latex, kind, words or f"{name}({{0}})")
        )
        return fn

    return wrap


def get_primitive(name: str) -> Primitive:
    """Return the primitive called ``name``; the error lists the known names."""
    return PRIMITIVES.lookup(name)
