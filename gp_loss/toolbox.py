"""A real DEAP ``base.Toolbox`` over our search space, so DEAP's algorithms run unchanged.

>>> toolbox = make_toolbox("cls_digits")
>>> population = toolbox.population(n=20)
>>> algorithms.eaSimple(population, toolbox, cxpb=0.5, mutpb=0.3, ngen=5)

Individuals are :class:`LossTree` (one-slot tasks) or :class:`LossGenome` (one tree per slot).
Operators modify individuals in place and return tuples, as DEAP's own do; size limits are
applied with ``gp.staticLimit``. ``individual``, ``population``, ``mutate`` and ``mate`` are
screened (:mod:`gp_loss.engine.screened`): they hand out only losses that pass the validity check and
the LRP and are new, as the search's own initialisation does; the raw ones are ``raw_*``. ``evaluate`` runs the full fitness pipeline and returns a plain
fitness tuple; candidates that earn no fitness (invalid, rejected) get the task's worst value.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

from deap import base, gp, tools

from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import MAX_HEIGHT, MAX_NODES, MUTATIONS, PipelineOptions, checked_mutations
from gp_loss.core.signature import SlotSignature
from gp_loss.engine.screened import Screen
from gp_loss.fitness.candidate import Evaluation
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.trees.space import LossGenome, LossTree, primitive_set
from gp_loss.trees.variation import operator


def _height(individual) -> int:
    return max(t.height for t in individual) if isinstance(individual, LossGenome) else individual.height


def _nodes(individual) -> int:
    return max(len(t) for t in individual) if isinstance(individual, LossGenome) else len(individual)


def mutate(individual, signatures: Sequence[SlotSignature], kinds: Sequence[str] = MUTATIONS) -> tuple[Any]:
    """In place: one mutation drawn uniformly from ``kinds`` (:mod:`gp_loss.trees.variation`:
    insert / shrink / replace / subtree / ratio), on one random slot."""
    kind = random.choice(kinds)
    if isinstance(individual, LossGenome):
        slot = random.randrange(len(individual))
        operator(kind, signatures[slot])(individual[slot])
    else:
        operator(kind, signatures[0])(individual)
    return (individual,)


def mate(first, second) -> tuple[Any, Any]:
    """In place: one-point crossover (on one random slot for genomes)."""
    if isinstance(first, LossGenome):
        slot = random.randrange(len(first))
        first[slot], second[slot] = gp.cxOnePoint(first[slot], second[slot])
        return first, second
    return gp.cxOnePoint(first, second)


def compile_individual(expr, signatures):
    """``toolbox.compile``: a LossTree -> its torch function (of the slot's inputs); a LossGenome
    -> one function per slot. Uses our straight-line code generator, not ``gp.compile``."""
    from gp_loss.trees.codegen import compile_tree

    if isinstance(expr, LossGenome):
        return [compile_tree(str(tree), sig) for tree, sig in zip(expr, signatures)]
    return compile_tree(str(expr), signatures[0])


def random_individual(psets: Sequence[gp.PrimitiveSet], min_depth: int, max_depth: int):
    """A random LossTree (one slot) or LossGenome (several)."""
    trees = [LossTree(gp.genHalfAndHalf(pset, min_depth, max_depth)) for pset in psets]
    return trees[0] if len(trees) == 1 else LossGenome(trees)


class PipelineFitness:
    """``toolbox.evaluate``: the fitness pipeline as a function returning a fitness tuple.

    ``history`` keeps every :class:`Evaluation` (outcome, LRP gain, seconds...) in call order.
    """

    def __init__(self, pipeline: FitnessPipeline) -> None:
        self.pipeline = pipeline
        self.history: list[Evaluation] = []

    def __call__(self, individual) -> tuple[float]:
        return self.record(self.pipeline(individual))

    def record(self, result: Evaluation) -> tuple[float]:
        """Keep ``result`` in the history and turn it into a fitness tuple."""
        self.history.append(result)
        worst = self.pipeline.task.worst_fitness()
        return (float(result.fitness) if result.fitness is not None else worst,)


class PipelineMap:
    """``toolbox.map`` on an execution backend.

    Mapping ``toolbox.evaluate`` screens each individual here (the caches live in the driver)
    and evaluates the rest on the backend, several at once; any other picklable function is
    mapped by the backend directly. Results come back in input order, as ``map`` does.
    """

    def __init__(self, evaluate: PipelineFitness, backend) -> None:
        self.evaluate = evaluate
        self.backend = backend

    def __call__(self, fn, iterable):
        items = list(iterable)
        if getattr(fn, "func", fn) is not self.evaluate:  # toolbox.register wraps it in a partial
            return self.backend.map(fn, items)
        from gp_loss.execution.dispatch import Dispatcher
        from gp_loss.fitness.candidate import Candidate
        from gp_loss.fitness.stages import as_candidate

        pipeline = self.evaluate.pipeline
        results: dict[int, Evaluation] = {}
        counter = iter(range(len(self.evaluate.history), 1 << 62))

        def done(candidate: Candidate, index: int, result: Evaluation) -> None:
            results[index] = result

        dispatcher = Dispatcher(
            pipeline, self.backend, lambda: next(counter), done, pipeline.task.worst_fitness()
        )
        for index, item in enumerate(items):
            while not dispatcher.has_room():
                dispatcher.collect()
            dispatcher.put(as_candidate(pipeline.task, item), index)
        dispatcher.drain()
        ordered = [results[i] for i in range(len(items))]
        return [self.evaluate.record(result) for result in ordered]


def task_worker_spec(task, pipeline: dict, threads: int, backend: str = "process"):
    """How process and Ray workers get ``task``: rebuilt by name from its options where the
    registry can (its module imported first), else the object itself, pickled (not for the
    serial backend, which evaluates in this process)."""
    from gp_loss.execution.base import WorkerSpec
    from gp_loss.run.runner import pickled_task, settings_for_task

    settings = settings_for_task(task)
    if settings.task_object and backend == "serial":
        return WorkerSpec(task.name, {}, pipeline, ("tasks",), threads)
    if settings.task_object:
        return WorkerSpec(task.name, {}, pipeline, ("tasks",), threads, pickled_task(task))
    return WorkerSpec(task.name, settings.task_options, pipeline, ("tasks", type(task).__module__), threads)


def make_toolbox(
    task,
    *,
    pipeline: PipelineOptions | None = None,
    tournament_size: int = 3,
    init_depth: tuple[int, int] = (1, 3),
    max_height: int = MAX_HEIGHT,
    max_nodes: int = MAX_NODES,
    constant_one: bool = False,
    mutations: Sequence[str] | None = None,
    backend: str = "serial",
    workers: int = 1,
    eval_timeout: float | None = None,
    gpus_per_eval: float | None = None,
    ray_address: str | None = None,
    screened: bool = True,
    **task_options: Any,
) -> base.Toolbox:
    """A DEAP toolbox with ``expr``, ``individual``, ``population``, ``mutate``, ``mate``,
    ``select``, ``evaluate`` and ``map`` registered for ``task`` (plus ``compile``: an individual
    as torch code, and the attributes ``pset``/``psets`` and ``task``).

    Args:
        task: a task object or a registered task name (built with ``task_options``).
        pipeline: fitness pipeline switches (GEC, LRP, stop-invalid, LRP parameters).
        tournament_size: ``select`` is ``tools.selTournament`` with this size.
        init_depth: depth range of random trees (half-and-half).
        max_height, max_nodes: limits applied to ``mutate`` and ``mate`` with ``gp.staticLimit``.
        constant_one: add the constant ``one`` terminal.
        mutations: the mutations ``mutate`` draws from, uniformly (``KNOWN_MUTATIONS``); default
            the task's own, as ``evolve`` uses (``Task.default_mutations``).
        backend, workers, eval_timeout, gpus_per_eval, ray_address: where ``toolbox.map`` runs
            evaluations (``serial``, ``process`` or ``ray``); call ``toolbox.close()`` when done.
        screened: ``individual``, ``population``, ``mutate`` and ``mate`` hand out only losses
            that pass the pipeline's cheap checks and are new, as the search's own
            initialisation does (:mod:`gp_loss.engine.screened`); the raw generators stay registered
            as ``raw_individual``, ``raw_population``, ``raw_mutate`` and ``raw_mate``. ``False``
            registers the raw ones under the plain names too.
    """
    if isinstance(task, str):
        from tasks import get_task

        task = get_task(task, **task_options)
    elif task_options:
        raise GpLossError(
            "task options go to the task's constructor: pass them with a task name, not an object"
        )
    mutations = checked_mutations(task.default_mutations if mutations is None else mutations, "mutations")
    # a copy: the caller's options object is theirs
    options = dataclasses.replace(
        pipeline or PipelineOptions(), constant_one=constant_one, max_height=max_height, max_nodes=max_nodes
    )
    signatures = [slot.signature(constant_one) for slot in task.slots]
    psets = [primitive_set(signature) for signature in signatures]
    toolbox = base.Toolbox()
    toolbox.psets = psets
    toolbox.pset = psets[0]  # the one-slot case, as DEAP's GP examples expect
    toolbox.register("compile", compile_individual, signatures=signatures)
    if len(psets) == 1:
        toolbox.register("expr", gp.genHalfAndHalf, pset=psets[0], min_=init_depth[0], max_=init_depth[1])
        toolbox.register("raw_individual", tools.initIterate, LossTree, toolbox.expr)
    else:
        toolbox.register("expr", random_individual, psets, init_depth[0], init_depth[1])
        toolbox.register("raw_individual", random_individual, psets, init_depth[0], init_depth[1])
    toolbox.register("raw_population", tools.initRepeat, list, toolbox.raw_individual)
    toolbox.register("raw_mutate", mutate, signatures=signatures, kinds=mutations)
    toolbox.mutations = mutations
    toolbox.register("raw_mate", mate)
    for name in ("raw_mutate", "raw_mate"):
        toolbox.decorate(name, gp.staticLimit(key=_height, max_value=max_height))
        toolbox.decorate(name, gp.staticLimit(key=_nodes, max_value=max_nodes))
    evaluate = PipelineFitness(FitnessPipeline(task, options))
    if screened:
        screen = Screen(
            evaluate.pipeline,
            signatures,
            lambda slot: LossTree(gp.genHalfAndHalf(psets[slot], init_depth[0], init_depth[1])),
        )
        toolbox.screen = screen
        toolbox.register("individual", screen.individual)
        toolbox.register("population", screen.population)
        toolbox.register("mutate", screen.mutate, raw=toolbox.raw_mutate)
        toolbox.register("mate", screen.mate, raw=toolbox.raw_mate)
    else:
        for name in ("individual", "population", "mutate", "mate"):
            toolbox.register(name, getattr(toolbox, f"raw_{name}"))
    toolbox.register("select", tools.selTournament, tournsize=tournament_size)
    toolbox.register("evaluate", evaluate)
    if backend == "serial" and workers == 1 and eval_timeout is None:
        toolbox.register("map", map)
        toolbox.register("close", lambda: None)
    else:
        from gp_loss.execution.backends import make_backend
        from gp_loss.execution.base import default_threads

        spec = task_worker_spec(task, options.to_json(), default_threads(workers), backend)
        runner = make_backend(
            backend,
            spec,
            workers=workers,
            local_evaluate=evaluate.pipeline.remote,
            eval_timeout=eval_timeout,
            gpus_per_eval=gpus_per_eval,
            ray_address=ray_address,
        )
        toolbox.register("map", PipelineMap(evaluate, runner))
        toolbox.register("close", runner.close)
    toolbox.task = task
    return toolbox
