"""Starting and resuming a search run: task + pipeline + evolution + run directory + hooks
(the machinery behind :func:`gp_loss.search` and ``evolve``)."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import (
    EvolutionConfig,
    ExecutionOptions,
    PipelineOptions,
    TrackingOptions,
    parse_budget,
)
from gp_loss.engine.evolution import AgingEvolution, Hook, Limits, SearchState
from gp_loss.engine.progress import ProgressPrinter
from gp_loss.execution.backends import checked, make_backend
from gp_loss.execution.base import WorkerSpec, default_threads
from gp_loss.fitness.candidate import Candidate, Evaluation
from gp_loss.fitness.pipeline import FitnessPipeline
from gp_loss.fitness.probe import check_probes
from gp_loss.run import runlock
from gp_loss.run.run_directory import RunDirectory, fresh_run_path


@dataclass
class RunSettings:
    """Everything ``evolve`` needs to start a run (recorded in run.json)."""

    task: str
    task_options: dict[str, Any] = field(default_factory=dict)
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    limits: Limits = field(default_factory=Limits)
    torch_threads: int | None = None
    execution: ExecutionOptions = field(default_factory=lambda: ExecutionOptions())
    imports: tuple[str, ...] = ()
    #: ``module.Class`` of a task given as a Python object that cannot be rebuilt from its
    #: name and JSON options (a :class:`tasks.generic.GenericTask` with its model and data):
    #: resuming such a run needs the object again, and workers receive it pickled.
    task_object: str | None = None
    #: the persistent search cache (``--cache``): ``None`` the default file, ``off``, or a path
    cache: str | None = None
    tracking: TrackingOptions = field(default_factory=TrackingOptions)
    #: ``evolve``'s options as given (defaults, ``--config`` file and flags resolved), in the
    #: form ``--config`` reads back; ``None`` for a search started from Python
    config: dict[str, Any] | None = None

    @property
    def threads(self) -> int:
        """torch threads per evaluation: given, or the cores shared among the workers."""
        return self.torch_threads or default_threads(self.execution.workers)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "task_options": self.task_options,
            "pipeline": self.pipeline.to_json(),
            "evolution": self.evolution.to_json(),
            "limits": {
                "budget": self.limits.budget,
                "max_explored": self.limits.max_explored,
                "max_trained": self.limits.max_trained,
            },
            "torch_threads": self.torch_threads,
            "execution": asdict(self.execution),
            "imports": list(self.imports),
            "task_object": self.task_object,
            "cache": self.cache,
            "tracking": asdict(self.tracking),
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSettings:
        """The settings of a run.json (read through :meth:`RunDirectory.read_config`, which
        brings older files up to date: :func:`gp_loss.run.run_directory.migrate_run_json`)."""
        return cls(
            task=data["task"],
            task_options=dict(data.get("task_options", {})),
            pipeline=PipelineOptions.from_json(data.get("pipeline", {})),
            evolution=EvolutionConfig.from_json(data.get("evolution", {})),
            limits=Limits(**data.get("limits", {})),
            torch_threads=data.get("torch_threads"),
            execution=ExecutionOptions(**data.get("execution", {})),
            imports=tuple(data.get("imports", ())),
            task_object=data.get("task_object"),
            cache=data.get("cache"),
            tracking=TrackingOptions(**data.get("tracking", {})),
            config=data.get("config"),
        )


#: The proxy's seed unless ``--task-option seed=N``: ``--seed`` seeds the evolution only, so
#: searches with different seeds judge every loss by the same proxy (and share the search cache)
PROXY_SEED = 0


def task_options(settings: RunSettings) -> dict[str, Any]:
    """The task's options as built (the seed :data:`PROXY_SEED` unless given)."""
    options = dict(settings.task_options)
    options.setdefault("seed", PROXY_SEED)
    return options


def build_task(settings: RunSettings):
    """The task object of a run."""
    from gp_loss.engine.imports import import_modules
    from tasks import get_task

    import_modules(settings.imports)
    options = task_options(settings)
    try:
        return get_task(settings.task, **options)
    except TypeError as err:
        raise GpLossError(f"bad option for task {settings.task!r}: {err}") from None


@dataclass
class Search:
    """A ready-to-run search; ``run()`` explores until a limit and returns the final state."""

    settings: RunSettings
    directory: RunDirectory
    evolution: AgingEvolution
    pipeline: FitnessPipeline

    _backend: Any = None
    _released: bool = False

    def backend(self):
        """The execution backend, started on first use and kept until :meth:`close`."""
        if self._backend is None:
            settings = self.settings
            spec = WorkerSpec(
                settings.task,
                task_options(settings),
                settings.pipeline.to_json(),
                ("tasks", *settings.imports),
                settings.threads,
                # the serial backend evaluates in this process: nothing to send
                pickled_task(self.evolution.task)
                if settings.task_object and settings.execution.backend != "serial"
                else "",
            )
            execution = settings.execution
            self._backend = make_backend(
                execution.backend,
                spec,
                workers=execution.workers,
                local_evaluate=self.pipeline.remote,
                eval_timeout=execution.eval_timeout,
                gpus_per_eval=execution.gpus_per_eval,
                ray_address=execution.ray_address,
            )
        return self._backend

    def run(self) -> SearchState:
        """Explore until a limit; the backend stays up for a later ``run`` (call :meth:`close`)."""
        torch.set_num_threads(self.settings.threads)
        return self.evolution.run(self.settings.limits, self.backend())

    def close(self) -> None:
        """Stop the backend's workers and let go of the run directory's lock."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        if not self._released:
            self._released = True
            runlock.release(self.directory.path)

    def __enter__(self) -> Search:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _assemble(
    settings: RunSettings,
    directory: RunDirectory,
    state: SearchState | None,
    hooks: list[Hook],
    progress: bool,
    task=None,
) -> Search:
    if task is None:
        if settings.task_object:
            raise GpLossError(
                f"this run searched a task given as a Python object ({settings.task_object}); "
                "pass it again: gp_loss.resume(out, task=...)"
            )
        task = build_task(settings)
    memory = search_memory(settings, task, directory)
    pipeline = FitnessPipeline(task, settings.pipeline, memory)
    directory.task_info = task.describe()
    directory.objectives = settings.evolution.objectives
    all_hooks: list[Hook] = [directory, *hooks]
    if progress:
        all_hooks.append(ProgressPrinter(settings.limits, task.fitness_metric))
    seeds = warm_start(settings, task, memory) if state is None else ()
    evolution = AgingEvolution(
        task, pipeline, settings.evolution, state, all_hooks, settings.pipeline.space, seeds
    )
    return Search(settings, directory, evolution, pipeline)


def warm_start(settings: RunSettings, task, memory) -> list[tuple[str, dict[str, str]]]:
    """``--init cache``: the best losses the search cache holds for the task, as many as the
    population, named by their stored fitness; a one-line error where the cache is off."""
    if settings.evolution.init != "cache":
        return []
    if memory is None:
        raise GpLossError(
            f"--init cache starts from the search cache, which is off for this run of task {task.name!r} "
            "(--cache off, GP_LOSS_SEARCH_CACHE=off, or a task whose data cannot be identified)"
        )
    cache, fingerprint, _run = memory
    found = cache.best_genomes(task.name, fingerprint, settings.evolution.population_size)
    if not found:
        print(
            f"--init cache: the search cache holds no trained loss of task {task.name!r} yet; "
            "starting from random trees",
            file=sys.stderr,
        )
    return [(f"cache #{rank} ({fitness:.4g})", genome) for rank, (genome, fitness) in enumerate(found, 1)]


def search_memory(settings: RunSettings, task, directory: RunDirectory):
    """``(SearchCache, fingerprint, run name)`` for the pipeline, or ``None`` where the cache is
    off or the task cannot say what its data is. The cache's path is fixed in the settings, so
    that a resumed run keeps using the same file."""
    from gp_loss.engine import search_cache as memory

    path = memory.resolve(settings.cache)
    settings.cache = "off" if path is None else str(path)
    if path is None:
        return None
    found = memory.task_fingerprint(task, settings.pipeline)
    if found is None:
        return None
    fingerprint, description = found
    cache = memory.SearchCache(path)
    cache.register(fingerprint, task.name, description)
    return cache, fingerprint, directory.path.name


def start(
    settings: RunSettings,
    out: str | Path | None = None,
    hooks: list[Hook] | None = None,
    progress: bool = True,
    task=None,
) -> Search:
    """Create a new run directory and the search that fills it (``task``: the task object when
    the caller built it; by default it is built from ``settings.task`` by name)."""
    checked(settings.execution)  # each group of options checks itself
    settings.evolution.validate()
    settings.pipeline.validate()
    if settings.evolution.objectives and settings.pipeline.rungs is None:
        # a Pareto search compares every objective at one fidelity: hurdles on the first
        # objective alone would stop the losses that are good at the others (--rungs overrides)
        settings.pipeline.rungs = (1.0,)
    settings.task_options = task_options(settings)  # run.json names the proxy's seed
    settings.tracking = settings.tracking.resolved()
    settings.tracking.check_installed()
    directory = RunDirectory(out or fresh_run_path(settings.task))
    search = _assemble(settings, directory, None, hooks or [], progress, task)  # validates the task first
    check_probes(search.evolution.task)  # a model/data/adapter mismatch fails before any file
    runlock.acquire(directory.path)  # one writer: from here until Search.close
    try:
        directory.create({**settings.to_json(), "task_info": search.evolution.task.describe()})
    except BaseException:
        runlock.release(directory.path)
        raise
    return search


def resume(
    out: str | Path,
    add_budget: float | None = None,
    max_explored: int | None = None,
    max_trained: int | None = None,
    hooks: list[Hook] | None = None,
    progress: bool = True,
    execution: dict[str, Any] | None = None,
    task=None,
    tracking: TrackingOptions | None = None,
) -> Search:
    """Continue the run in ``out`` exactly where its checkpoint left it.

    Args:
        add_budget: seconds added to the run's budget.
        max_explored, max_trained: replace the run's limits when given.
        execution: replace execution settings (backend, workers...) for the rest of the run.
        tracking: log the rest of the run (and what the trackers lack of its past) here
            instead of where run.json says.
        task: the task object, needed when the run was started with one that cannot be rebuilt
            by name (``run.json`` then names its class under ``task_object``).
    """
    directory = RunDirectory(out)
    config = directory.read_config()  # a folder without a run gets no lock file
    runlock.acquire(directory.path)  # one writer: from here until Search.close
    try:
        return _resume(
            directory,
            config,
            add_budget,
            max_explored,
            max_trained,
            hooks,
            progress,
            execution,
            task,
            tracking,
        )
    except BaseException:
        runlock.release(directory.path)
        raise


def _resume(
    directory, config, add_budget, max_explored, max_trained, hooks, progress, execution, task, tracking
) -> Search:
    settings = RunSettings.from_json(config)
    for key, value in (execution or {}).items():
        setattr(settings.execution, key, value)
    checked(settings.execution)
    if tracking:  # what is given replaces what run.json says; the rest stays
        given = tracking.resolved()
        settings.tracking = TrackingOptions(
            given.tensorboard or settings.tracking.tensorboard, given.mlflow or settings.tracking.mlflow
        )
    settings.tracking.check_installed()
    state = directory.read_state()
    events = directory.recover_events(state)
    limits = settings.limits
    if add_budget is not None:
        limits.budget = (limits.budget or (state.elapsed if state else 0.0)) + add_budget
    if max_explored is not None:
        limits.max_explored = max_explored
    if max_trained is not None:
        limits.max_trained = max_trained
    if task is not None and task.name != settings.task:
        raise GpLossError(f"{directory.path} searched task {settings.task!r}, not {task.name!r}")
    search = _assemble(settings, directory, state, hooks or [], progress, task)
    for event in events:
        search.pipeline.record(Candidate(event["trees"], event["id"]), Evaluation.from_json(event))
    if state is not None:
        directory.write_best(state)
    config["limits"] = settings.to_json()["limits"]
    config["execution"] = asdict(settings.execution)
    config["tracking"] = asdict(settings.tracking)
    config.setdefault("resumes", []).append({"explored": state.explored if state else 0})
    from gp_loss.trees.best_json import write_json_atomic

    write_json_atomic(directory.run_json, config)
    return search


def pickled_task(task) -> str:
    """The task object pickled for process and Ray workers (base64 text, for the JSON spec);
    its model and data factories travel by reference, so they must be importable."""
    import base64
    import pickle

    try:
        return base64.b64encode(pickle.dumps(task)).decode("ascii")
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise GpLossError(
            f"task {task.name!r} cannot be sent to workers ({err}); define its model and data "
            "factories at module level, or use the serial backend"
        ) from None


def settings_for_task(task, **kw: Any) -> RunSettings:
    """:class:`RunSettings` for a task object: by name and options where the registry can rebuild
    it (``run.json`` alone then resumes the run), else marked as an object task."""
    import json

    from tasks import TASKS

    options = task.options()
    try:
        json.dumps(options)
        by_name = TASKS.get(task.name) is type(task)
    except TypeError:
        by_name = False
    if by_name:
        return RunSettings(task.name, options, **kw)
    cls = type(task)
    return RunSettings(task.name, {}, task_object=f"{cls.__module__}.{cls.__qualname__}", **kw)


__all__ = ["ExecutionOptions", "RunSettings", "Search", "TrackingOptions", "parse_budget", "resume", "start"]
