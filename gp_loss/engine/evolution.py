"""Steady-state aging evolution (regularised evolution) over loss genomes, on DEAP operators.

docs/architecture.md section 4. The loop stays short: logging, checkpoints and progress hang off hooks
(``on_event(event, state)``, ``on_end(state, reason)``), as in evotorch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.events import CACHED, OUTCOMES, PROXY_TRAINED, TRAINED, rank_key
from gp_loss.core.settings import EvolutionConfig, SpaceLimits
from gp_loss.engine import pareto
from gp_loss.engine.member import Member
from gp_loss.engine.selection import selection_for
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.space import WEIGHTS, LossTree, random_tree
from gp_loss.trees.variation import crossover, mutate


@dataclass
class SearchState:
    """Everything needed to continue a run exactly (saved in checkpoint.json)."""

    explored: int = 0
    trained: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    population: list[Member] = field(default_factory=list)
    best: dict[str, Any] | None = None
    elapsed: float = 0.0
    rng: Any = None
    last_event: dict[str, Any] | None = None
    #: per slot, the initial-phase trees that passed the Loss-Rejection Protocol
    survivors: dict[str, list[str]] = field(default_factory=dict)
    #: per proxy rung, the fitness every freshly trained candidate reached there (the hurdles)
    rung_scores: list[list[float]] = field(default_factory=list)
    #: initial genomes proposed so far (``--init baselines`` seeds the baselines first)
    seeded: int = 0
    #: a Pareto search's first front over every loss trained so far: id, genome, fitness,
    #: rung, objective values and metrics of each member
    front: list[dict[str, Any]] = field(default_factory=list)
    #: ``--init cache``: the genomes it starts from, ``[name, {slot: tree}]`` (fixed at the start)
    seeds: list[list[Any]] = field(default_factory=list)
    #: a slot-wise search's schedule, populations and per-slot bests (gp_loss/engine/slotwise.py)
    slotwise: dict[str, Any] = field(default_factory=dict)

    def outcomes(self) -> str:
        """The outcome counts so far, ``invalid 12, trained 3`` (those that occurred)."""
        return ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)

    def best_fitness(self) -> str:
        """The best fitness to four places, ``-`` before any loss trained."""
        return "-" if self.best is None else f"{self.best['fitness']:.4f}"

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        data = asdict(self)
        data["rng"] = [self.rng[0], list(self.rng[1]), self.rng[2]] if self.rng else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchState:
        """Inverse of :meth:`to_json`."""
        state = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        state.population = [Member(**m) for m in data.get("population", [])]
        if data.get("rng"):
            version, internal, gauss = data["rng"]
            state.rng = (version, tuple(internal), gauss)
        return state


@dataclass
class Limits:
    """When to stop: wall-clock budget (seconds, across resumes), explored or trained counts."""

    budget: float | None = None
    max_explored: int | None = None
    max_trained: int | None = None

    def reached(self, state: SearchState) -> str | None:
        """The reason to stop now, or ``None``."""
        if self.max_explored is not None and state.explored >= self.max_explored:
            return f"explored {state.explored} losses"
        if self.max_trained is not None and state.trained >= self.max_trained:
            return f"trained {state.trained} losses"
        if self.budget is not None and state.elapsed >= self.budget:
            return "time budget spent"
        return None


def trained_here(result: Evaluation) -> bool:
    """A trained result this run may count as its own: trained now, or by an earlier run (cached)."""
    return (
        result.effective_outcome == TRAINED
        and result.outcome in (TRAINED, CACHED)
        and result.fitness is not None
    )


class Hook:
    """Base of the loop's observers; override what you need."""

    def on_event(self, event: dict[str, Any], state: SearchState) -> None:
        """After each explored candidate (the event is final)."""

    def on_end(self, state: SearchState, reason: str) -> None:
        """When the run stops."""


class AgingEvolution:
    """Steady-state aging evolution of loss genomes.

    Args:
        task: the task (its ``slots`` define the genome).
        evaluate: the fitness pipeline: ``Candidate -> Evaluation``.
        config: evolution settings.
        state: a saved state to continue from (resume), or ``None`` for a fresh run.
        hooks: observers.
        space: size limits and ``constant_one`` of the trees (the pipeline's, so that screening
            and variation agree; default: the paper's space).
        seeds: ``--init cache``'s starting genomes, ``(name, {slot: tree})`` (a fresh run only;
            a resumed run keeps those of its state).
    """

    def __init__(
        self,
        task,
        evaluate: Callable[[Candidate], Evaluation],
        config: EvolutionConfig | None = None,
        state: SearchState | None = None,
        hooks: Iterable[Hook] = (),
        space: SpaceLimits | None = None,
        seeds: Sequence[tuple[str, Mapping[str, str]]] = (),
    ) -> None:
        self.task = task
        self.evaluate = evaluate
        self.config = config or EvolutionConfig()
        self.hooks = list(hooks)
        self.space = space or SpaceLimits()
        self.signatures = {s.name: s.signature(self.space.constant_one) for s in task.slots}
        #: who wins a tournament and who leaves a full population (gp_loss/engine/selection.py)
        self.selection = selection_for(self.config.objectives, self.config.replace)
        if state is None:
            random.seed(self.config.seed)
            state = SearchState(rng=random.getstate(), seeds=[[n, dict(g)] for n, g in seeds])
        self.state = state
        self._run_limits: Limits | None = None
        self._clock: float | None = None
        #: the slot-wise schedule, for a multi-slot task searched slot by slot
        self.slotwise = None
        if self.slot_search == "slotwise":
            from gp_loss.engine.slotwise import SlotwiseSearch

            self.slotwise = SlotwiseSearch(self)

    @property
    def slot_search(self) -> str:
        """How the slots are searched: ``joint`` or ``slotwise``. ``auto`` is slot-wise for a
        multi-slot task searched from scratch with a tree baseline in the space (the anchor),
        else joint; one slot or random search is always joint."""
        mode = self.config.slot_search
        if len(self.signatures) < 2 or self.config.random_search:
            return "joint"
        if mode == "auto":  # --init baselines / cache seed a joint search
            return "slotwise" if self.config.init == "scratch" and self.baseline_genomes() else "joint"
        return mode

    def progress(self) -> float:
        """The share of the run's limits used so far (the largest over time, explored and
        trained; without any limit, trainings over ten per slot and population member)."""
        from gp_loss.engine.slotwise import TRAININGS_PER_SLOT_AND_MEMBER, progress

        elapsed = self._elapsed() if self._clock is not None else self.state.elapsed
        default = TRAININGS_PER_SLOT_AND_MEMBER * len(self.signatures) * self.config.population_size
        return progress(self._run_limits, self.state.explored, self.state.trained, elapsed, default)

    # -- proposing children ----------------------------------------------------------------
    def random_slot_tree(self, slot: str) -> str:
        """A fresh random tree of ``slot`` (DEAP half-and-half at the configured depths)."""
        low, high = self.config.init_depth
        return str(random_tree(self.signatures[slot], low, high))

    def _random_genome(self) -> dict[str, str]:
        return {slot: self.random_slot_tree(slot) for slot in self.signatures}

    def _initial_genome(self) -> dict[str, str]:
        """A genome for the initial population.

        With several slots and ``per_slot_init``, slots without a survivor yet draw fresh trees
        and the others reuse a random survivor; once every slot has survivors, only the slot
        with the fewest draws a fresh tree. A two-slot population then fills in about
        1/p_cls + 1/p_reg draws per genome instead of 1/(p_cls * p_reg), p being each slot's
        LRP pass rate (issue 10, item 5).
        """
        fresh = self._random_genome()
        survivors = self.state.survivors
        if len(fresh) == 1 or not self.config.per_slot_init:
            return fresh
        if all(survivors.get(slot) for slot in fresh):
            target = min(fresh, key=lambda slot: len(survivors[slot]))
            drawn = {target}
        else:
            drawn = {slot for slot in fresh if not survivors.get(slot)}
        return {
            slot: tree if slot in drawn else random.choice(survivors[slot]) for slot, tree in fresh.items()
        }

    def _learn_survivors(self, genome: dict[str, str], result: Evaluation) -> None:
        """Remember the trees of an initial-phase genome that passed their slot's LRP."""
        trained = result.effective_outcome in PROXY_TRAINED
        for slot in list(genome) if trained else result.passed_slots:
            known = self.state.survivors.setdefault(slot, [])
            if genome[slot] not in known:
                known.append(genome[slot])

    def baseline_genomes(self) -> list[tuple[str, dict[str, str]]]:
        """The task's baselines that are trees of this search space, by name; hand-written
        losses and trees outside the space are left out."""
        baselines = sorted(self.task.baselines.items())
        return [(name, dict(genome)) for name, genome in baselines if self._in_space(genome)]

    def seed_genomes(self) -> list[tuple[str, dict[str, str]]]:
        """What ``--init baselines`` seeds (:meth:`baseline_genomes`), or ``--init cache``: the
        best losses the search cache held for the task when the run started (``state.seeds``)."""
        if self.config.init == "cache":
            return [(name, dict(genome)) for name, genome in self.state.seeds if self._in_space(genome)]
        return self.baseline_genomes()

    def _in_space(self, genome: Mapping[str, str]) -> bool:
        if set(genome) != set(self.signatures):
            return False
        try:
            for slot, signature in self.signatures.items():
                parse_tree(genome[slot], signature)
        except GpLossError:  # a primitive outside this space (e.g. `one` without --constant-one)
            return False
        return True

    def _seeded_genome(self, meta: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        """``--init baselines`` / ``cache``: each seed once, then mutants of a random one (one slot)."""
        seeds = self.seed_genomes()
        if not seeds:
            return self._initial_genome(), meta
        index = self.state.seeded
        self.state.seeded += 1
        if index < len(seeds):
            return seeds[index][1], {**meta, "seed": seeds[index][0]}
        name, genome = random.choice(seeds)
        slot = random.choice(list(self.signatures))
        tree = parse_tree(genome[slot], self.signatures[slot])
        child, how = self._changed(tree, tree, None, slot)
        return {**genome, slot: str(child)}, {**meta, "seed": name, "mutation": how, "slot": slot}

    def _changed(self, tree, child, how: str | None, slot: str) -> tuple[Any, str | None]:
        """``child`` (made from ``tree`` by ``how``), mutated from ``tree`` again while it equals
        ``tree`` (at most 20 times)."""
        for _ in range(20):
            if str(child) != str(tree):
                break
            child, how = mutate(
                tree, self.signatures[slot], None, kinds=self.config.mutations, **self._limits
            )
        return child, how

    @property
    def _weighs_slots(self) -> bool:
        """Whether children may change a slot's weight: several slots, and a probability (runs
        from before slot weights have none, and draw no random number for it)."""
        return len(self.signatures) > 1 and self.config.weight_mutation > 0

    @property
    def _limits(self) -> dict[str, int]:
        return {"max_height": self.space.max_height, "max_nodes": self.space.max_nodes}

    def _tournament(self) -> Member:
        size = min(self.config.tournament, len(self.state.population))
        entrants = random.sample(self.state.population, size)
        return self.selection.winner(entrants, self.state.population)

    def propose(self) -> tuple[dict[str, str], dict[str, Any]]:
        """The next genome to explore and how it was made (``searched``: the slots it varies)."""
        if self.slotwise is not None:
            return self.slotwise.propose()
        every = list(self.signatures)
        if self.config.random_search or len(self.state.population) < self.config.population_size:
            phase = "random" if self.config.random_search else "init"
            meta = {"phase": phase, "parent": None, "second_parent": None, "mutation": None, "slot": None}
            meta["searched"] = every
            if self.config.random_search:
                return self._random_genome(), meta
            if self.config.init in ("baselines", "cache"):
                return self._seeded_genome(meta)
            return self._initial_genome(), meta
        genome, meta = self.evolve_child(every)
        return genome, {**meta, "searched": every}

    def evolve_child(self, slots: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
        """A child of a tournament winner (mutation, or crossover then mutation) that differs
        from it in one of ``slots``, and how it was made."""
        parent = self._tournament()
        slot = random.choice(slots)
        signature = self.signatures[slot]
        tree = parse_tree(parent.genome[slot], signature)
        child, how, second = tree, None, None
        if self._weighs_slots and random.random() < self.config.weight_mutation:
            weight = random.choice([w for w in WEIGHTS if w != tree.weight])
            genome = {**parent.genome, slot: str(LossTree(tree, weight))}
            return genome, {
                "phase": "evolve",
                "parent": parent.id,
                "second_parent": None,
                "mutation": "weight",
                "slot": slot,
            }
        if self.config.crossover_prob > 0 and random.random() < self.config.crossover_prob:
            other = self._tournament()
            child, _ = crossover(tree, parse_tree(other.genome[slot], signature), **self._limits)
            how, second = "crossover", other.id
        child, how = self._changed(tree, child, how, slot)  # never the parent itself
        genome = {**parent.genome, slot: str(child)}
        return genome, {
            "phase": "evolve",
            "parent": parent.id,
            "second_parent": second,
            "mutation": how,
            "slot": slot,
        }

    # -- the loop --------------------------------------------------------------------------
    def _admit(self, event_id: int, genome: dict[str, str], result: Evaluation, meta: dict[str, Any]) -> bool:
        if not result.admissible or result.effective_outcome not in PROXY_TRAINED:
            return False
        population = self.state.population
        rung = result.rung if result.effective_outcome == TRAINED else 0
        values = self._objectives(genome, result)
        member = Member(event_id, genome, float(result.fitness), rung, values)
        if self.slotwise is not None:
            return self.slotwise.admit(member, meta, result)
        self.join(population, member)
        return True

    def join(self, population: list[Member], member: Member) -> None:
        """Add ``member`` to ``population``; past the population size, the leaver the selection
        policy names goes (random search only ages: the oldest)."""
        population.append(member)
        if len(population) > self.config.population_size:
            population.pop(0 if self.config.random_search else self.selection.leaver(population))

    def _objectives(self, genome: dict[str, str], result: Evaluation) -> list[float] | None:
        """A Pareto search's objective values of a result (the worst fitness where a metric is
        missing: a diverged training has none)."""
        if not self.config.objectives:
            return None
        nodes = sum(len(parse_tree(tree, self.signatures[slot])) for slot, tree in genome.items())
        worst = self.task.worst_fitness()
        metrics = {name: result.metrics.get(name, worst) for name in self.config.objectives}
        return pareto.objective_values(self.config.objectives, metrics, nodes)

    def _enter_front(self, event_id: int, genome: dict[str, str], result: Evaluation) -> bool:
        """Add a trained result to the run's first front; whether the front changed."""
        values = self._objectives(genome, result)
        entry = {
            "id": event_id,
            "genome": genome,
            "fitness": result.fitness,
            "rung": result.rung,
            "objectives": values,
            "metrics": dict(result.metrics),
        }
        points = [(m["rung"], m["objectives"]) for m in self.state.front] + [(result.rung, values)]
        keep = set(pareto.first_front(points))
        if len(self.state.front) not in keep:
            return False
        self.state.front = [m for i, m in enumerate(self.state.front) if i in keep] + [entry]
        return True

    def default_pick(self) -> dict[str, Any] | None:
        """The front member ``best.json`` names by default: the best first objective (at the
        highest rung), then the smallest genome."""
        if not self.state.front:
            return None
        return max(self.state.front, key=lambda m: (m["rung"], m["objectives"][0], self._size_key(m)))

    def _size_key(self, member: dict[str, Any]) -> float:
        return -sum(len(parse_tree(t, self.signatures[s])) for s, t in member["genome"].items())

    def _finish(self, candidate: Candidate, meta: dict[str, Any], result: Evaluation) -> dict[str, Any]:
        """Account for one explored candidate and tell the hooks."""
        state = self.state
        event_id = candidate.id
        state.explored += 1
        state.counts[result.outcome] = state.counts.get(result.outcome, 0) + 1
        if result.outcome in PROXY_TRAINED:
            state.trained += 1
        if meta.get("phase") == "init" and len(self.signatures) > 1:
            self._learn_survivors(candidate.genome, result)
        if result.outcome in PROXY_TRAINED:  # freshly trained: its rungs set hurdles
            for index, rung in enumerate(result.rungs):
                while len(state.rung_scores) <= index:
                    state.rung_scores.append([])
                state.rung_scores[index].append(rung["fitness"])
        entered = self._admit(event_id, candidate.genome, result, meta)
        state.elapsed = self._elapsed()
        improved = trained_here(result) and (
            state.best is None
            or rank_key(result.rung, result.fitness)
            > rank_key(state.best.get("rung", 0), state.best["fitness"])
        )
        front_changed = (
            bool(self.config.objectives)
            and trained_here(result)
            and self._enter_front(event_id, candidate.genome, result)
        )
        if self.config.objectives:  # the best is the front's default pick
            pick = self.default_pick()
            improved = front_changed and pick is not None and pick["id"] == event_id
        if improved:
            state.best = {
                "id": event_id,
                "genome": candidate.genome,
                "fitness": result.fitness,
                "metrics": result.metrics,
                "rung": result.rung,
            }
        event = {
            "id": event_id,
            **meta,
            "trees": candidate.genome,
            **result.to_json(),
            "entered": entered,
            "new_best": improved or front_changed,
            "time": round(state.elapsed, 3),
        }
        state.last_event = event
        for hook in self.hooks:
            hook.on_event(event, state)
        return event

    def _elapsed(self) -> float:
        return self._elapsed_base + (time.perf_counter() - self._clock)

    def _may_propose(self, limits: Limits, outstanding: int) -> bool:
        state = self.state
        if limits.budget is not None and self._elapsed() >= limits.budget:
            return False
        if limits.max_explored is not None and state.explored + outstanding >= limits.max_explored:
            return False
        return limits.max_trained is None or state.trained + outstanding < limits.max_trained

    def run(self, limits: Limits, backend=None) -> SearchState:
        """Explore until a limit is reached, keeping ``backend.workers`` evaluations in flight.

        Cheap stages (duplicate, validity, GEC) run here, where the caches are; LRP and proxy
        training run on the backend (default: serial, in process). Returns the final state.
        """
        from gp_loss.execution.dispatch import Dispatcher
        from gp_loss.execution.serial import SerialBackend

        pipeline = (
            self.evaluate if isinstance(self.evaluate, FitnessPipeline) else _PlainEvaluate(self.evaluate)
        )
        backend = backend or SerialBackend(pipeline.remote)
        self._clock, self._elapsed_base = time.perf_counter(), self.state.elapsed
        self._run_limits = limits
        dispatcher = Dispatcher(
            pipeline, backend, lambda: self.state.explored, self._finish, self.task.worst_fitness()
        )
        while True:
            while dispatcher.has_room() and self._may_propose(limits, dispatcher.outstanding):
                random.setstate(self.state.rng)
                genome, meta = self.propose()
                self.state.rng = random.getstate()
                candidate = Candidate(genome)
                candidate.context["hurdles"] = pipeline.hurdles(self.state.rung_scores)
                dispatcher.put(candidate, meta)
            if not dispatcher.in_flight:
                break
            dispatcher.collect()
        self.state.elapsed = self._elapsed()
        reason = limits.reached(self.state) or "stopped"
        for hook in self.hooks:
            hook.on_end(self.state, reason)
        return self.state


class _PlainEvaluate:
    """Lets a plain ``Candidate -> Evaluation`` function drive the loop (no screening, no caches)."""

    def __init__(self, evaluate: Callable[[Candidate], Evaluation]) -> None:
        self.remote = evaluate

    def screen(self, candidate: Candidate) -> None:
        return None

    def finish(self, candidate: Candidate, result: Evaluation) -> Evaluation:
        return result

    def record(self, candidate: Candidate, result: Evaluation) -> None:
        return None

    def hurdles(self, history: list[list[float]]) -> list[float | None]:
        return []  # a plain function trains every candidate in full
