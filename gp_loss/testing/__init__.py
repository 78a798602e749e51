"""Helpers shared by the test-suite and by users' own tests (as optuna ships ``optuna.testing``)."""

from __future__ import annotations

import torch
from deap import gp

from gp_loss.trees.space import CONSTANT_ONE
from primitives import PRIMITIVES


def interpret(nodes, env: dict[str, torch.Tensor]) -> torch.Tensor:
    """Reference interpreter: evaluates a tree by plain recursion over the primitives.

    Deliberately naive (recursive, no caching, no specialisation) so that it is an independent
    check of the code generator. Use it on trees of modest depth only.
    """

    def evaluate(i: int) -> tuple[torch.Tensor, int]:
        node = nodes[i]
        if isinstance(node, gp.Terminal):
            if node.value == CONSTANT_ONE:
                return torch.ones(1, 1, 1, 1), i + 1
            return env[node.value], i + 1
        args, j = [], i + 1
        for _ in range(node.arity):
            value, j = evaluate(j)
            args.append(value)
        return PRIMITIVES[node.name].fn(*args), j

    return evaluate(0)[0]


def spawn_roundtrip(individual) -> tuple[str, str, tuple]:
    """Run in a spawned process: receives a pickled individual, reports what it got."""
    return type(individual).__name__, str(individual), individual.fitness.values
