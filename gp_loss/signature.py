"""Slot signatures: what a loss slot's trees see (input names, spatial extent)."""

from __future__ import annotations

from dataclasses import dataclass

#: Tree inputs of each input adapter, in argument order.
ADAPTER_INPUTS: dict[str, tuple[str, ...]] = {
    "softmax_onehot": ("y_hat", "y"),
    "box_iou_areas": ("inter", "union", "enclose"),
}

#: Per adapter: groups of inputs of which a valid tree uses at least one each.
REQUIRED_INPUTS: dict[str, tuple[frozenset[str], ...]] = {
    "softmax_onehot": (frozenset({"y_hat"}), frozenset({"y"})),
    "box_iou_areas": (frozenset({"inter", "union", "enclose"}),),
}


@dataclass(frozen=True)
class SlotSignature:
    """The search space of one loss slot.

    Attributes:
        adapter: input adapter name (a key of :data:`ADAPTER_INPUTS`).
        spatial: True if inputs have real H, W (enables the pooling primitives).
        constant_one: add the constant terminal ``one`` (off in the paper's space).
    """

    adapter: str
    spatial: bool = False
    constant_one: bool = False

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of the tree's input terminals, in argument order."""
        return ADAPTER_INPUTS[self.adapter]

    @property
    def required_inputs(self) -> tuple[frozenset[str], ...]:
        """Input groups a valid tree must use, at least one input of each group.

        The rule behind it: a loss must depend on both the prediction and the target.
        ``y_hat`` and ``y`` are one each; every box area already depends on both boxes, so any
        one of ``inter``, ``union``, ``enclose`` will do (the IoU loss uses no ``enclose``).
        """
        return REQUIRED_INPUTS[self.adapter]

    def __post_init__(self) -> None:
        if self.adapter not in ADAPTER_INPUTS:
            from gp_loss.errors import GpLossError

            known = ", ".join(sorted(ADAPTER_INPUTS))
            raise GpLossError(f"unknown adapter {self.adapter!r}; known: {known}")
