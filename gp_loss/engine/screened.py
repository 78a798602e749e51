"""Individuals that can train: DEAP's initialisation and variation, screened as the search's are.

Most raw random trees of the search space cannot train: they are invalid (a required input
unused, a non-finite value or gradient on the probe batch), the Loss-Rejection Protocol rejects
them, or they copy a loss already drawn. The search skips those and keeps drawing until its
population holds losses that trained. DEAP's algorithms evaluate whatever the toolbox hands
them, so on raw draws the README's ``eaSimple`` on cls_digits trained none of 189 losses.

:class:`Screen` draws and varies individuals through the same cheap checks the fitness pipeline
runs (the validity check and the LRP verdict of each slot, the duplicate key), using the
pipeline's own stages, so a later ``toolbox.evaluate`` reuses each slot's LRP verdict:

- :meth:`Screen.individual` draws, per slot, until that slot's tree passes, then redraws one
  slot while the genome copies one already drawn or evaluated;
- :meth:`Screen.mutate` and :meth:`Screen.mate` retry the raw operator on copies, a bounded
  number of times, until the children pass and are new; otherwise the parents stay as they were
  (an unchanged child is a duplicate, which costs nothing to evaluate).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.signature import SlotSignature
from gp_loss.fitness.candidate import Candidate
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.fitness.stage import slot_losses, slot_probes
from gp_loss.fitness.stages import static_problem
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.space import LossGenome, LossTree

#: draws per individual before :meth:`Screen.individual` gives up
MAX_DRAWS = 2000
#: raw operator applications per :meth:`Screen.mutate` / :meth:`Screen.mate` call
MAX_TRIES = 20


class Screen:
    """Screened initialisation and variation over ``pipeline``'s checks.

    Args:
        pipeline: the fitness pipeline that ``toolbox.evaluate`` runs (its task, switches, caches).
        signatures: one per slot, in the task's slot order.
        draw: a fresh random tree of a slot, given its index.
    """

    def __init__(
        self,
        pipeline: FitnessPipeline,
        signatures: Sequence[SlotSignature],
        draw: Callable[[int], LossTree],
    ) -> None:
        self.pipeline = pipeline
        self.signatures = list(signatures)
        self.slots = [slot.name for slot in pipeline.task.slots]
        self.draw = draw
        self.drawn: set[str] = set()  # genome keys handed out by this screen

    # -- the checks ------------------------------------------------------------------------
    def passing_slots(self, trees: Sequence[LossTree]) -> list[bool]:
        """Per slot: does its tree pass the validity check and (when on) its LRP verdict?"""
        options = self.pipeline.options
        candidate = self._candidate(trees)
        passing = []
        for tree, signature in zip(trees, self.signatures):
            parsed = parse_tree(str(tree), signature)
            passing.append(static_problem(parsed, signature, options.max_height, options.max_nodes) is None)
        if not any(passing):
            return passing
        probes = slot_probes(self.pipeline.context, candidate)
        losses = slot_losses(self.pipeline.context, candidate)
        lrp = self.pipeline.lrp
        for index, slot in enumerate(self.slots):
            if passing[index] and not probes[slot].finite:
                passing[index] = False
            if passing[index] and lrp.enabled:
                passing[index] = lrp.verdict(losses[slot], slot)[0] == "passed"
        return passing

    def is_new(self, trees: Sequence[LossTree]) -> bool:
        """The genome was neither handed out by this screen nor evaluated. (A genome with the
        gradient key of an earlier one is let through: GEC gives it that one's fitness for free.)"""
        key = self._candidate(trees).key
        return key not in self.drawn and key not in self.pipeline.dedup.seen

    def passes(self, trees: Sequence[LossTree]) -> bool:
        """Every slot passes and the genome is new."""
        return all(self.passing_slots(trees)) and self.is_new(trees)

    def accepted(self, trees: Sequence[LossTree]) -> bool:
        """:meth:`passes`; an accepted genome is noted as handed out."""
        if not self.passes(trees):
            return False
        self.note(trees)
        return True

    def note(self, trees: Sequence[LossTree]) -> None:
        """Remember a genome as handed out (a later copy of it is not new)."""
        self.drawn.add(self._candidate(trees).key)

    def _candidate(self, trees: Sequence[LossTree]) -> Candidate:
        return Candidate({slot: str(tree) for slot, tree in zip(self.slots, trees)})

    # -- DEAP's operators ------------------------------------------------------------------
    def individual(self) -> LossTree | LossGenome:
        """A new individual whose every slot passes the checks."""
        trees = [self.draw(index) for index in range(len(self.slots))]
        failures = [0] * len(self.slots)
        for _ in range(MAX_DRAWS):
            passing = self.passing_slots(trees)
            if all(passing):
                if self.accepted(trees):
                    return trees[0] if len(trees) == 1 else LossGenome(trees)
                passing[random.randrange(len(trees))] = False  # a copy: redraw one slot
            for index, ok in enumerate(passing):
                if not ok:
                    failures[index] += 1
                    trees[index] = self.draw(index)
        worst = self.slots[max(range(len(failures)), key=failures.__getitem__)]
        raise GpLossError(
            f"no screened individual of task {self.pipeline.task.name!r} in {MAX_DRAWS} draws "
            f"(slot {worst!r} never passed); the raw generator is toolbox.raw_individual"
        )

    def population(self, n: int) -> list[LossTree | LossGenome]:
        """``n`` screened individuals, each new."""
        return [self.individual() for _ in range(n)]

    def mutate(self, individual, raw: Callable[..., tuple[Any]]) -> tuple[Any]:
        """``raw`` (a DEAP mutation) retried on copies until the child passes and is new; in place."""
        for _ in range(MAX_TRIES):
            (child,) = raw(_copy(individual))
            if str(child) != str(individual) and self.accepted(_trees(child)):
                _assign(individual, child)
                break
        return (individual,)

    def mate(self, first, second, raw: Callable[..., tuple[Any, Any]]) -> tuple[Any, Any]:
        """``raw`` (a DEAP crossover) retried on copies until both children pass and are new; in
        place. A child equal to its parent (crossover of equal subtrees) is let through."""
        parents = (str(first), str(second))
        for _ in range(MAX_TRIES):
            one, two = raw(_copy(first), _copy(second))
            children = [c for c in (one, two) if str(c) not in parents]
            if children and all(self.passes(_trees(c)) for c in children):
                for child in children:
                    self.note(_trees(child))
                _assign(first, one)
                _assign(second, two)
                break
        return first, second


def _trees(individual) -> list[LossTree]:
    return list(individual) if isinstance(individual, LossGenome) else [individual]


def _copy(individual):
    if isinstance(individual, LossGenome):
        return LossGenome([LossTree(tree) for tree in individual])
    return LossTree(individual)


def _assign(individual, child) -> None:
    """Make ``individual`` equal ``child`` in place (DEAP's operators work in place)."""
    if isinstance(individual, LossGenome):
        for index, tree in enumerate(child):
            individual[index] = LossTree(tree)
    else:
        individual[0:] = list(child)  # DEAP's slice check needs a start
