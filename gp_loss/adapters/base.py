"""The :class:`Adapter` base class, the adapter registry and the reduction every loss shares.

An adapter turns a torch loss's usual arguments (logits and labels, predicted and target
boxes...) into a tree's inputs plus a mask of valid positions. One class per adapter, one file
each, owns everything about it: input names and the groups a tree must use, value ranges for
the interval analysis, symbols for formulas, the forward computation, the function the
standalone export copies and constructor options such as ``ignore_index``. Search, codegen,
export, symbolic and benches ask the adapter; nothing else branches on an adapter's name.

This module depends on torch alone (``import tasks`` stays light).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch

from gp_loss.core.errors import GpLossError
from primitives.registry import Registry

Tensor = torch.Tensor
Interval = tuple[float, float]

#: Registered adapter classes by name.
ADAPTERS: Registry[type[Adapter]] = Registry("adapter", GpLossError)

UNBOUNDED: Interval = (-math.inf, math.inf)

#: The ordering check's probes (:meth:`Adapter.ordering_probes`), and the pairs ``(a, b)`` in
#: which a sound loss costs less on ``a`` than on ``b``.
ORDERING: tuple[str, ...] = ("correct", "uninformed", "wrong", "majority")
ORDERED_PAIRS: tuple[tuple[str, str], ...] = (
    ("correct", "uninformed"),
    ("uninformed", "wrong"),
    ("correct", "majority"),
)


#: The far-off start's distance from the targets, in the targets' standard deviations (+ 1):
#: :func:`far_from`.
FAR_OFFSET = 5.0


def far_from(target: Tensor, shape: torch.Size, valid: Tensor | None = None) -> Tensor:
    """Predictions of ``shape`` that miss each valid ``target`` value by ``FAR_OFFSET`` x (the
    targets' std + 1), above or below by a seeded coin; 0 where not ``valid``."""
    target = target.reshape(shape).to(torch.float32)
    valid = torch.ones_like(target, dtype=torch.bool) if valid is None else valid.reshape(shape)
    spread = float(target[valid].std()) if int(valid.sum()) > 1 else 0.0
    signs = torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    offset = FAR_OFFSET * (spread + 1.0) * signs
    return torch.where(valid, target + offset, torch.zeros_like(target))


class Adapter:
    """One input adapter. Subclasses set the class attributes and :attr:`function`.

    Attributes:
        name: registry key, written into ``best.json``.
        inputs: the tree's input terminals, in the order :attr:`function` returns them.
        required_inputs: groups of inputs of which a valid tree uses at least one each (a loss
            must depend on both the prediction and the target).
        ranges: per input, the closed interval its values lie in (interval analysis).
        symbols: per input, ``(sympy name, sympy assumptions)`` for formulas; the assumptions
            must hold for the safe primitives (an input that can be 0 is not ``positive``).
        arguments: names of the two ``forward`` parameters in exported code.
        defaults: constructor options and their defaults (ints, floats or bools); they are
            passed to :attr:`function` after the two tensors, in this order, and stored in
            ``best.json`` when they differ from the defaults.
        calibration: the panels ``bench lrp`` calibrates the Loss-Rejection Protocol on, label
            -> tree: ``good`` (must pass), ``bad`` (must be rejected; negations of the good ones
            are added) and ``collapsing`` (pass the paper's protocol yet cannot train a network).
        words: per input, its meaning in words (model cards).
        function: ``(prediction, target, *options) -> ([inputs...], valid)``, TorchScript
            compatible, free of data-dependent branches (``torch.export`` traces it) and
            depending on torch alone: the standalone export copies its source.

    :meth:`example`, :meth:`dynamic_dims` and :meth:`edge_cases` describe the adapter's input
    domain for the export bundle (its test vectors, its ``torch.export`` program) and ``verify``.
    """

    name: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ()
    required_inputs: ClassVar[tuple[frozenset[str], ...]] = ()
    ranges: ClassVar[Mapping[str, Interval]] = {}
    symbols: ClassVar[Mapping[str, tuple[str, Mapping[str, bool]]]] = {}
    arguments: ClassVar[tuple[str, str]] = ("prediction", "target")
    defaults: ClassVar[Mapping[str, int | float | bool]] = {}
    calibration: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    words: ClassVar[Mapping[str, str]] = {}
    function: ClassVar[Callable[..., Any]]

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(self.defaults) or "none"
            raise GpLossError(f"adapter {self.name!r} has no option {unknown[0]!r}; known: {known}")
        self.options: dict[str, int | float | bool] = {}
        for key, default in self.defaults.items():
            value = options.get(key, default)
            if type(value) is not type(default) and not (isinstance(default, float) and type(value) is int):
                raise GpLossError(
                    f"adapter {self.name!r} option {key}={value!r} must be {type(default).__name__}"
                )
            self.options[key] = type(default)(value)

    def forward(self, prediction: Tensor, target: Tensor) -> tuple[list[Tensor], Tensor]:
        """The tree inputs (in :attr:`inputs` order) and the mask of valid positions."""
        return type(self).function(prediction, target, *self.options.values())

    def ordering_probes(self, prediction: Tensor, target: Tensor) -> dict[str, Tensor] | None:
        """Predictions for the Loss-Rejection Protocol's ordering check, built from a probe
        batch's ``(prediction, target)`` and named as in :data:`ORDERING`: ``correct`` (confident
        and right), ``uninformed``, ``wrong`` (confident and wrong) and ``majority`` (the most
        frequent target predicted everywhere). A sound loss costs correct < uninformed < wrong
        and correct < majority; a name left out skips its comparisons.

        ``{}``: no ordering applies to this adapter's targets; the ``shared`` protocol's head
        judges the slot alone. ``None`` (the default): the adapter declares nothing, and its
        slot is judged with the ``paper`` protocol (a one-line notice says so).
        """
        return None

    def far_start(self, prediction: Tensor, target: Tensor) -> Tensor | None:
        """Predictions far from ``target`` (a network that starts badly), from which a loss must
        still pull towards the targets: the ``shared`` protocol rejects a loss whose gradient
        there vanishes or points away (:meth:`gp_loss.fitness.lrp.LossRejection.far_problem`).
        ``None`` (the default): no such probe for this adapter."""
        return None

    def check(self, prediction: Tensor, target: Tensor) -> str | None:
        """Why ``(prediction, target)`` do not fit this adapter (shapes, label ranges), in words,
        or ``None``. A search checks its task's probe batch once before it writes anything; the
        default accepts whatever :attr:`function` runs on."""
        return None

    def changed_options(self) -> dict[str, int | float | bool]:
        """Options that differ from the defaults (what ``best.json`` records)."""
        return {k: v for k, v in self.options.items() if v != self.defaults[k]}

    def example(self, generator: torch.Generator, spatial: bool) -> tuple[Tensor, Tensor]:
        """Seeded ``(prediction, target)`` in the adapter's domain, small: a bundle's test vectors
        and the example ``torch.export`` traces."""
        raise GpLossError(f"adapter {self.name!r} declares no example inputs (Adapter.example)")

    def dynamic_dims(self, spatial: bool) -> tuple[dict[int, str], dict[int, str]]:
        """Per argument, the dims whose size may change (index -> name; one name, one size):
        the exported program accepts any size there."""
        return {0: "batch"}, {0: "batch"}

    def edge_cases(self, generator: torch.Generator, spatial: bool) -> dict[str, tuple[Tensor, Tensor]]:
        """Named inputs at the edges of the domain (huge and tiny values, ties, empty and
        all-ignored batches), where a loss must stay finite in value and gradient."""
        return {}

    def curve(self) -> tuple[str, Tensor, Callable[[float], tuple[Tensor, Tensor]]] | None:
        """The loss over its main input, for a model card's plot: the axis label, the values of
        x and ``x -> (prediction, target)`` of one sample. ``None``: no such curve."""
        return None

    def input_range(self, name: str) -> Interval:
        """The interval of input ``name`` (unbounded where undeclared)."""
        return self.ranges.get(name, UNBOUNDED)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({options})"


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: register an adapter under its ``name`` (duplicates are refused)."""
    if not cls.name or not cls.inputs or not hasattr(cls, "function"):
        raise ValueError(f"adapter {cls.__name__} needs a name, inputs and a function")
    missing = set(cls.inputs) - set(cls.symbols)
    if missing:
        raise ValueError(f"adapter {cls.name!r} declares no symbol for {sorted(missing)}")
    return ADAPTERS.register(cls.name, cls)


def adapter_class(name: str) -> type[Adapter]:
    """The adapter class registered as ``name``; a one-line error lists the known ones."""
    return ADAPTERS.lookup(name)


def get_adapter(name: str, options: Mapping[str, Any] | None = None) -> Adapter:
    """An adapter instance with ``options`` (checked against the class's ``defaults``)."""
    return adapter_class(name)(**dict(options or {}))


def valid_mean(out: Tensor, valid: Tensor, like: Tensor) -> Tensor:
    """Mean of a tree's output over all valid elements of the input shape ``like``.

    The output may be smaller than the inputs after aggregations; it is broadcast back first.
    With nothing valid (an empty batch, everything ignored) the loss is 0 and still has a graph.
    No branch depends on the data, so ``torch.export`` can trace it with dynamic shapes; the terms
    are divided before they are summed, so a mean of finite values cannot overflow.
    """
    full = out.expand(like.shape)
    mask = valid.expand(like.shape)
    count = mask.sum().clamp(min=1).to(full.dtype)
    # each term divided before the sum: a mean of finite values stays finite, whatever their number
    return torch.where(mask, full / count, torch.zeros_like(full)).sum()
