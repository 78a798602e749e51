"""gp-loss: search loss functions from scratch (AutoLoss-Zero) with DEAP and torch.

Public API:
    make_toolbox: a DEAP toolbox (expr, individual, population, mutate, mate, select, evaluate,
        map) so that ``deap.algorithms`` run unchanged with our search space and fitness pipeline.
    load_loss: a found loss (``best.json``) as a ``torch.nn.Module`` / ``ModuleDict``.
    compile_tree: a tree string as a straight-line torch function.
    parse_tree: a tree string as a DEAP ``PrimitiveTree`` (safe: never evaluated).
    primitive_set: the DEAP ``PrimitiveSet`` of a slot signature.
    SlotSignature: what a slot's trees see.
    GpLossError: user-facing errors.
"""

from __future__ import annotations

from gp_loss.codegen import compile_tree
from gp_loss.errors import GpLossError
from gp_loss.exchange import BestLoss, SlotLoss, read_best, write_best
from gp_loss.module import load_loss
from gp_loss.parse import parse_tree
from gp_loss.signature import SlotSignature
from gp_loss.space import LossGenome, LossTree, primitive_set
from gp_loss.toolbox import make_toolbox

__all__ = [
    "BestLoss",
    "GpLossError",
    "LossGenome",
    "LossTree",
    "SlotLoss",
    "SlotSignature",
    "compile_tree",
    "load_loss",
    "make_toolbox",
    "parse_tree",
    "primitive_set",
    "read_best",
    "write_best",
]
