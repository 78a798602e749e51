"""Slot signatures: what a loss slot's trees see (the adapter's inputs, spatial extent)."""

from __future__ import annotations

from dataclasses import dataclass

from gp_loss.adapters.base import Adapter, adapter_class


@dataclass(frozen=True)
class SlotSignature:
    """The search space of one loss slot.

    Attributes:
        adapter: input adapter name (see :mod:`gp_loss.adapters`).
        spatial: True if inputs have real H, W (enables the pooling primitives).
        constant_one: add the constant terminal ``one`` (off in the paper's space).
    """

    adapter: str
    spatial: bool = False
    constant_one: bool = False

    def __post_init__(self) -> None:
        adapter_class(self.adapter)  # an unknown adapter is a one-line error here

    @property
    def adapter_class(self) -> type[Adapter]:
        """The adapter's class (inputs, ranges, symbols, export source)."""
        return adapter_class(self.adapter)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the tree's input terminals, in argument order."""
        return self.adapter_class.inputs

    @property
    def required_inputs(self) -> tuple[frozenset[str], ...]:
        """Input groups a valid tree must use, at least one input of each group."""
        return self.adapter_class.required_inputs
