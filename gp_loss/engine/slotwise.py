"""Slot-wise search for tasks with several loss slots (``--slot-search slotwise``).

A genome whose slots are all random must get every slot right at once: on inst_coco thousands
of draws pass before the first three-slot genome clears all its slots, and the search's 10
minutes end with a mask loss that trains masks worse than BCE. Slot-wise search takes the slots
one at a time (docs/architecture.md section 4):

1. **The anchor**: the task's tree baseline (its default reference's tree form where it has one)
   is explored first. It holds every slot that is not being searched.
2. **One slot at a time**: each slot gets an equal share of the first half of the slot-wise
   budget; its population draws fresh trees for that slot only, on the anchor's other slots,
   and evolves that slot alone (aging evolution, the same tournaments and variation).
3. **By gain**: the second half is spent on the slots in proportion to the gain each showed
   (its best fitness over the anchor's); a slot that gained nothing gets a small share.
4. **Jointly**: after ``slot_share`` of the budget, the population is the best members of all
   slot phases; the combinations of the per-slot winners are explored first, then every slot
   evolves (the joint search's own loop).

The budget is whichever limit the run has (time, explored, trained), as a share of it used;
the phase only moves forward, so a resumed run, even with more budget, goes on where it was.
Every event records the slots its candidate searched (``searched``); the state is JSON in
checkpoint.json, so a resume is exact.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.events import TRAINED, rank_key
from gp_loss.engine.member import Member
from gp_loss.fitness.candidate import Evaluation

#: the phase of the search once every slot has had its turn
JOINT = "joint"
#: share of the gain-allocated half that a slot with no gain still gets, relative to an equal share
FLOOR = 0.1
#: without any limit, the slot-wise phases last this many trainings per slot and population member
TRAININGS_PER_SLOT_AND_MEMBER = 10
#: per slot, the best trees whose combinations open the joint phase
COMBINED_PER_SLOT = 3


def progress(limits: Any, explored: int, trained: int, elapsed: float, default_trainings: int) -> float:
    """The share of the run's budget used: the largest over the limits it has (``limits``: a
    :class:`gp_loss.engine.evolution.Limits` or ``None``; time, explored, trained); without any,
    trainings over ``default_trainings``."""
    shares = []
    if limits is not None:
        if limits.budget:
            shares.append(elapsed / limits.budget)
        if limits.max_explored:
            shares.append(explored / limits.max_explored)
        if limits.max_trained:
            shares.append(trained / limits.max_trained)
    if not shares:
        shares.append(trained / max(default_trainings, 1))
    return max(shares)


def first_round(slots: list[str], share: float) -> list[list[Any]]:
    """Each slot in turn, an equal part of the first half of ``share``: ``[[slot, end], ...]``."""
    step = share / 2 / len(slots)
    return [[slot, round(step * (index + 1), 9)] for index, slot in enumerate(slots)]


def by_gain(gains: dict[str, float], start: float, share: float) -> list[list[Any]]:
    """The rest of ``share`` (from ``start``) split over the slots in proportion to their gain,
    the largest first; a slot that gained nothing gets :data:`FLOOR` of an equal part."""
    positive = {slot: max(gain, 0.0) for slot, gain in gains.items()}
    total = sum(positive.values())
    if total <= 0:
        weights = dict.fromkeys(gains, 1.0)
    else:
        floor = FLOOR * total / len(gains)
        weights = {slot: gain + floor for slot, gain in positive.items()}
    whole = sum(weights.values())
    plan, end = [], start
    for slot in sorted(weights, key=lambda s: (-weights[s], list(gains).index(s))):
        end += (share - start) * weights[slot] / whole
        plan.append([slot, round(end, 9)])
    plan[-1][1] = share
    return plan


class SlotwiseSearch:
    """The slot-wise schedule of one :class:`~gp_loss.engine.evolution.AgingEvolution` (given
    as ``engine``; that module imports this one, not the reverse): what to propose next and
    which population a result joins. Its state lives in ``engine.state.slotwise`` (plain JSON)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.slots = list(engine.signatures)
        self.share = engine.config.slot_share
        name, self.anchor = anchor_genome(engine)
        data = engine.state.slotwise
        if not data:
            data.update(
                anchor_name=name,
                anchor_id=None,
                anchor_fitness=None,
                origin=None,
                plan=first_round(self.slots, self.share),
                planned_by_gain=False,
                step=0,
                phase=None,
                populations={},
                best={},
                combinations=None,
            )
        self.data = data

    # -- where the search is --------------------------------------------------------------
    def phase(self) -> str:
        """The current phase (``slot:<name>`` or ``joint``), moved forward to the budget used.

        The plan's ends are shares of what is left after the anchor trained (start-up and the
        anchor's own training would otherwise eat the first slot's turn). A slot whose
        population is not yet full keeps its turn for up to as long again, and the turns after
        it move later by as much (never past half of the joint phase's share)."""
        data = self.data
        used = self._unscaled(self.engine.progress())
        plan = data["plan"]
        while data["step"] < len(plan):
            slot, end = plan[data["step"]]
            begin = plan[data["step"] - 1][1] if data["step"] else 0.0
            if used < end:
                break
            if data["phase"] == f"slot:{slot}" and not self._full() and used < end + (end - begin):
                break
            late = max(used - end, 0.0)
            latest = self.share + (1.0 - self.share) / 2
            for later in plan[data["step"] + 1 :]:
                later[1] = round(min(later[1] + late, latest), 9)
            data["step"] += 1
            if data["step"] == len(plan) and not data["planned_by_gain"]:
                data["gains"] = self.gains()
                plan += by_gain(data["gains"], max(plan[-1][1], used), max(self.share, used))
                data["planned_by_gain"] = True
        if data["step"] >= len(plan):
            return JOINT
        return f"slot:{plan[data['step']][0]}"

    def _unscaled(self, used: float) -> float:
        """A share of the whole run as a share of the plan (the plan starts where the anchor ended)."""
        origin = self.data.get("origin") or 0.0
        return (used - origin) / (1.0 - origin)

    def _full(self) -> bool:
        return len(self.engine.state.population) >= self.engine.config.population_size

    def gains(self) -> dict[str, float]:
        """Per slot, its best fitness so far over the anchor's (0 while either is unknown)."""
        anchor = self.data["anchor_fitness"]
        best = self.data["best"]
        return {
            slot: (best[slot][1] - anchor) if slot in best and anchor is not None else 0.0
            for slot in self.slots
        }

    # -- proposing ------------------------------------------------------------------------
    def propose(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The next genome and how it was made (``searched`` names the slots it varies)."""
        data = self.data
        if data["anchor_id"] is None and data["phase"] is None:
            data["phase"] = "anchor"
            return dict(self.anchor), _meta("anchor", [], seed=data["anchor_name"])
        phase = self.phase()
        self._enter(phase)
        engine = self.engine
        if phase == JOINT:
            combination = self._next_combination()
            if combination is not None:
                return combination, _meta("combine", self.slots)
            if len(engine.state.population) < engine.config.population_size:  # too few trained
                return engine._initial_genome(), _meta("init", self.slots)
            genome, meta = engine.evolve_child(self.slots)
            return genome, {**meta, "searched": self.slots}
        slot = phase.split(":", 1)[1]
        if len(engine.state.population) < engine.config.population_size:
            tree = engine.random_slot_tree(slot)
            return {**self.anchor, slot: tree}, _meta("init", [slot], slot=slot)
        genome, meta = engine.evolve_child([slot])
        return genome, {**meta, "searched": [slot]}

    def _enter(self, phase: str) -> None:
        """Make ``phase``'s population the engine's (the one leaving is kept for later)."""
        data = self.data
        if data["phase"] == phase:
            return
        state = self.engine.state
        if data["phase"] not in (None, "anchor", JOINT):
            data["populations"][data["phase"]] = [asdict(m) for m in state.population]
        if phase == JOINT:
            state.population = self._joint_population()
            data["combinations"] = self._combinations()
        else:
            state.population = self._members(data["populations"].pop(phase, []))
        data["phase"] = phase

    def _joint_population(self) -> list[Member]:
        """The best members of all slot phases, one per genome, at most the population size,
        oldest first (so that aging removes the weakest of them first)."""
        seen, members = set(), []
        pools = [self._members(p) for p in self.data["populations"].values()] + [self.engine.state.population]
        for member in sorted(itertools.chain(*pools), key=lambda m: m.rank, reverse=True):
            key = tuple(sorted(member.genome.items()))
            if key not in seen:
                seen.add(key)
                members.append(member)
        kept = members[: self.engine.config.population_size]
        return sorted(kept, key=lambda m: m.id)

    def _combinations(self) -> list[dict[str, str]]:
        """Genomes that combine the slots' best trees: the winners together first, then other
        combinations of each slot's top :data:`COMBINED_PER_SLOT`, in random order."""
        tops = {slot: self.top_trees(slot) for slot in self.slots}
        options = [tops[slot] or [self.anchor[slot]] for slot in self.slots]
        genomes = [dict(zip(self.slots, trees)) for trees in itertools.product(*options)]
        first, rest = genomes[0], genomes[1:]
        random.shuffle(rest)
        limit = self.engine.config.population_size
        return [first, *rest[: max(limit - 1, 0)]]

    def _next_combination(self) -> dict[str, str] | None:
        pending = self.data["combinations"] or []
        while pending:
            genome = pending.pop(0)
            if genome != self.anchor and all(genome != m.genome for m in self.engine.state.population):
                return genome
        return None

    def top_trees(self, slot: str) -> list[str]:
        """The best trees a slot's phase trained (the anchor's tree among them), best first."""
        members = self._members(self.data["populations"].get(f"slot:{slot}", []))
        if self.data["phase"] == f"slot:{slot}":
            members = list(self.engine.state.population)
        ranked = sorted(members, key=lambda m: m.rank, reverse=True)
        trees: list[str] = []
        for member in ranked:
            if member.genome[slot] not in trees:
                trees.append(member.genome[slot])
        best = self.data["best"].get(slot)
        if best is not None and best[0] not in trees:
            trees.insert(0, best[0])
        return trees[:COMBINED_PER_SLOT]

    # -- results --------------------------------------------------------------------------
    def admit(self, member: Member, meta: dict[str, Any], result: Evaluation) -> bool:
        """Put a trained result's member into the population of the phase that proposed it;
        whether it entered one. Tracks the anchor's fitness and each slot's best tree."""
        searched = meta.get("searched")
        data = self.data
        trained = result.effective_outcome == TRAINED and result.fitness is not None
        if meta.get("phase") == "anchor":
            data["anchor_id"] = member.id
            data["origin"] = min(self.engine.progress(), 0.5 * self.share)
            if trained:
                data["anchor_fitness"] = float(result.fitness)
            for slot in self.slots:
                self._note_best(slot, member)
                self._join(f"slot:{slot}", member)
            return True
        if searched and len(searched) == 1:
            slot = searched[0]
            if trained:
                self._note_best(slot, member)
            return self._join(f"slot:{slot}", member)
        return self._join(JOINT, member)

    def _note_best(self, slot: str, member: Member) -> None:
        best = self.data["best"].get(slot)
        if best is None or member.rank > rank_key(best[2], best[1]):
            self.data["best"][slot] = [member.genome[slot], member.fitness, member.rung]

    def _join(self, phase: str, member: Member) -> bool:
        """Add ``member`` to ``phase``'s population (the current one, or the one kept aside)."""
        if self.data["phase"] == phase:
            self.engine.join(self.engine.state.population, member)
            return True
        kept = self._members(self.data["populations"].get(phase, []))
        self.engine.join(kept, member)
        self.data["populations"][phase] = [asdict(m) for m in kept]
        return True

    def _members(self, dicts: list[dict[str, Any]]) -> list[Member]:
        return [Member(**d) for d in dicts]


def anchor_genome(engine: Any) -> tuple[str, dict[str, str]]:
    """The tree baseline that holds the slots not searched: the task's ``anchor_baseline``, else
    the tree form of its default reference (``tree:<name>``), else its first tree baseline."""
    seeds = dict(engine.baseline_genomes())
    if not seeds:
        raise GpLossError(
            f"--slot-search slotwise needs a tree baseline of task {engine.task.name!r} in this search "
            "space to hold the slots not searched; the task has none: use --slot-search joint"
        )
    task = engine.task
    preferred = [getattr(task, "anchor_baseline", ""), f"tree:{getattr(task, 'default_baseline', '')}"]
    name = next((p for p in preferred if p in seeds), sorted(seeds)[0])
    return name, seeds[name]


def _meta(phase: str, searched: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "phase": phase,
        "parent": None,
        "second_parent": None,
        "mutation": None,
        "slot": None,
        **extra,
        "searched": list(searched),
    }
