"""Who becomes a parent and who leaves the population: a policy beside the evolution loop, not
inside it (docs/architecture.md section 4). Both policies see the same random entrants, drawn by
the loop, so that a run's random stream does not depend on the policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import REPLACE_RULES
from gp_loss.engine import pareto


class Member(Protocol):
    """What a policy reads of a population member (:class:`gp_loss.engine.evolution.Member`)."""

    @property
    def rank(self) -> tuple[int, float]: ...

    @property
    def point(self) -> tuple[int, list[float]]: ...


class Selection(Protocol):
    """A parent from a tournament's entrants, and the member a full population loses."""

    def winner(self, entrants: Sequence[Member], population: Sequence[Member]) -> Member: ...

    def leaver(self, population: Sequence[Member]) -> int: ...


class RankSelection:
    """One objective: the entrant with the best (rung, fitness) wins; the oldest member leaves
    (aging evolution), or with ``replace="worst"`` the worst."""

    def __init__(self, replace: str = "oldest") -> None:
        if replace not in REPLACE_RULES:
            raise GpLossError(f"unknown --replace {replace!r}; use oldest or worst")
        self.replace = replace

    def winner(self, entrants: Sequence[Member], population: Sequence[Member]) -> Member:
        return max(entrants, key=lambda m: m.rank)

    def leaver(self, population: Sequence[Member]) -> int:
        if self.replace == "worst":
            return min(range(len(population)), key=lambda i: population[i].rank)
        return 0


class ParetoSelection:
    """Several objectives (``--objectives``): the entrant with the lowest Pareto rank in the
    population wins, then the largest crowding distance; NSGA-II's survivor rule picks who leaves."""

    def winner(self, entrants: Sequence[Member], population: Sequence[Member]) -> Member:
        ranks = pareto.ranking([m.point for m in population])
        where = {id(m): i for i, m in enumerate(population)}
        return min(entrants, key=lambda m: (ranks[where[id(m)]][0], -ranks[where[id(m)]][1]))

    def leaver(self, population: Sequence[Member]) -> int:
        return pareto.worst([m.point for m in population])


def selection_for(objectives: Sequence[str], replace: str) -> Selection:
    """The policy a search's settings ask for."""
    return ParetoSelection() if objectives else RankSelection(replace)
