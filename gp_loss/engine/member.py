"""A member of a search's population: the explored candidate's id, its genome, its fitness and
the proxy rung that fitness was scored at (its own module, so that the evolution loop and the
slot-wise schedule share it without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass

from gp_loss.core.events import rank_key


@dataclass
class Member:
    """A population member: id of the explored candidate, genome, fitness and the proxy rung
    the fitness was scored at (members compare by rung first, then fitness)."""

    id: int
    genome: dict[str, str]
    fitness: float
    rung: int = 0
    #: the objective values of a Pareto search (to maximise; ``None`` otherwise)
    objectives: list[float] | None = None

    @property
    def rank(self) -> tuple[int, float]:
        """The selection key: a candidate that trained to a higher rung beats any stopped lower."""
        return rank_key(self.rung, self.fitness)

    @property
    def point(self) -> tuple[int, list[float]]:
        """Rung and objective values, as :mod:`gp_loss.engine.pareto` compares them."""
        return (self.rung, self.objectives or [self.fitness])
