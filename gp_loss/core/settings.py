"""Every search setting, declared once: one dataclass per group (the evolution, the fitness
pipeline, the execution, the tracking) whose fields carry their default, their help text, their
``evolve`` flag and their ``gp_loss.search`` keyword (:func:`gp_loss.core.option.option`), and whose
``validate()`` is the one place they are checked. ``evolve``'s flags and ``gp_loss.search``'s
keywords are derived from these fields. This module imports neither torch nor DEAP, so that the
command line starts at once."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.option import option

#: Tree size limits (DEAP's customary height limit, and a node limit that keeps trees readable).
MAX_HEIGHT = 17
MAX_NODES = 64
#: Share of candidates that train on past each proxy rung (ASHA's eta = 3).
PROMOTE = 1 / 3
#: ``--replace``: the member that leaves a full population.
REPLACE_RULES: tuple[str, ...] = ("oldest", "worst")
#: ``--init``: random trees (the paper's), the task's baselines and their mutants, or the best
#: losses the search cache holds for the task (a warm start).
INITS: tuple[str, ...] = ("scratch", "baselines", "cache")
#: ``--slot-search``: every slot at once, or one slot at a time first (gp_loss/engine/slotwise.py).
SLOT_SEARCHES: tuple[str, ...] = ("auto", "joint", "slotwise")
#: ``--mutations``: DEAP's four (every task's default unless it names its own) and ours, ``ratio``
#: (:func:`gp_loss.trees.variation.mut_ratio`: a subtree S becomes mean_nhw(S) / mean_nhw(R)).
MUTATIONS: tuple[str, ...] = ("insert", "shrink", "replace", "subtree")
KNOWN_MUTATIONS: tuple[str, ...] = (*MUTATIONS, "ratio")


def checked_mutations(mutations: Iterable[str], flag: str = "--mutations") -> tuple[str, ...]:
    """``mutations`` as a tuple, or a one-line error naming ``flag`` if it is empty or names an
    unknown mutation."""
    mutations = tuple(mutations)
    if not mutations or any(m not in KNOWN_MUTATIONS for m in mutations):
        raise GpLossError(
            f"bad {flag} {','.join(mutations)!r}: name one or more of {', '.join(KNOWN_MUTATIONS)}"
        )
    return mutations


#: ``--lrp``: the Loss-Rejection Protocols (gp_loss/fitness/rejection.py).
PROTOCOLS: tuple[str, ...] = ("shared", "paper")

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_budget(text: str) -> float:
    """``90s``, ``10m``, ``2h``, ``1h30m`` or plain seconds -> seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise GpLossError(f"cannot read budget {text!r}; use e.g. 90s, 10m, 2h or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_fractions(text: str, flag: str = "--rungs") -> tuple[float, ...]:
    """``0.25,0.5,1`` -> ``(0.25, 0.5, 1.0)`` with a one-line error naming ``flag``."""
    try:
        fractions = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise GpLossError(f"bad {flag} {text!r}; use fractions of the proxy steps such as 0.25,1") from None
    if not fractions or any(not 0 < f <= 1 for f in fractions) or max(fractions) != 1:
        raise GpLossError(f"bad {flag} {text!r}: fractions in (0, 1], the last one 1 (the full proxy)")
    return tuple(sorted(set(fractions)))


def parse_names(text: str) -> tuple[str, ...]:
    """``a, b`` -> ``("a", "b")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


@dataclass(frozen=True)
class SpaceLimits:
    """The search space's size limits and whether it has the constant ``one``: screening
    (validity) and variation (mutation, crossover) read these from one object."""

    max_height: int = MAX_HEIGHT
    max_nodes: int = MAX_NODES
    constant_one: bool = False


@dataclass
class EvolutionConfig:
    """How the search proposes losses (docs/architecture.md section 4)."""

    population_size: int = option(
        20, flag="--population", keyword="population", type=int, cli_default=None,
        help="Population size P (default: the task's, 20 for most).",
    )  # fmt: skip
    tournament_size: int | None = option(
        None, flag="--tournament", keyword="tournament", type=int,
        help="Tournament size T (default max(2, P/10)).",
    )  # fmt: skip
    crossover_prob: float = option(
        0.1, flag="--crossover", keyword="crossover", type=float,
        help="Probability that a child comes from one-point crossover of two tournament winners "
        "(on one slot) rather than from mutation alone.",
    )  # fmt: skip
    replace: str = option(
        "oldest", choices=REPLACE_RULES, help="Survivor rule: the oldest or the worst member leaves."
    )
    random_search: bool = option(
        False, help="Fresh random losses instead of evolution (the paper's baseline)."
    )
    #: depth range of random trees (DEAP half-and-half)
    init_depth: tuple[int, int] = (1, 3)
    seed: int = option(
        0, type=int, help="The evolution's seed; the proxy's training seed is 0 unless --task-option seed=N."
    )
    #: with several slots, fill the initial population slot by slot: each initial genome draws
    #: one fresh tree and reuses trees of the other slots that already passed the LRP
    per_slot_init: bool = True
    init: str = option(
        "scratch", choices=INITS,
        help="Initial population: random trees (the paper's), the task's baseline trees and their mutants, "
        "or the best losses the search cache holds for the task and their mutants (a warm start).",
    )  # fmt: skip
    weight_mutation: float = option(
        0.1, type=float,
        help="Tasks with several loss slots: the probability that a child differs from its parent only in "
        "one slot's weight (1, C = the slot's channels, or 10), the scale that balances the slots.",
    )  # fmt: skip
    slot_search: str = option(
        "auto", choices=SLOT_SEARCHES,
        help="Tasks with several loss slots: evolve every slot at once (joint), or one slot at a time "
        "first, the others held at the task's tree baseline, then jointly from the slots' winners "
        "(slotwise); auto: slotwise for a search from scratch where the task has a tree baseline.",
    )  # fmt: skip
    slot_share: float = option(
        0.5, type=float,
        help="With --slot-search slotwise: the share of the budget searched slot by slot before the joint phase.",
    )  # fmt: skip
    mutations: tuple[str, ...] = option(
        MUTATIONS, parse=parse_names, metavar="M1,M2,...", cli_default=None,
        help="The mutations a child is drawn from, uniformly: DEAP's insert, shrink, replace, subtree, and "
        "ratio (a subtree S becomes mean_nhw(S) / mean_nhw(R), R random: the per-class ratio of sums that "
        "Dice, IoU and class-balanced cross-entropy are made of). Default: the task's (`tasks`).",
    )  # fmt: skip
    objectives: tuple[str, ...] = option(
        (), parse=parse_names, metavar="M1,M2,...", cli_default=None,
        help="A Pareto search over these (task metrics, or size: the genome's node count); the first "
        "is the fitness the proxy's hurdles use.",
    )  # fmt: skip

    @property
    def tournament(self) -> int:
        """Effective tournament size."""
        return self.tournament_size or max(2, self.population_size // 10)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for run.json."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvolutionConfig:
        """Inverse of :meth:`to_json` (older run.json files are brought up to date by
        :func:`gp_loss.run.run_directory.migrate_run_json` first)."""
        data = dict(data)
        data["init_depth"] = tuple(data.get("init_depth", (1, 3)))
        data["objectives"] = tuple(data.get("objectives", ()))
        data["mutations"] = tuple(data.get("mutations", MUTATIONS))  # runs from before the setting
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def validate(self) -> None:
        """A one-line error for the first setting that cannot work."""
        if self.replace not in REPLACE_RULES:
            raise GpLossError(f"unknown --replace {self.replace!r}; use oldest or worst")
        if not 0.0 <= self.weight_mutation <= 1.0:
            raise GpLossError(
                f"--weight-mutation must be a probability in [0, 1], got {self.weight_mutation}"
            )
        if not 0.0 <= self.crossover_prob <= 1.0:
            raise GpLossError(f"--crossover must be a probability in [0, 1], got {self.crossover_prob}")
        if self.init not in INITS:
            raise GpLossError(f"unknown --init {self.init!r}; use {', '.join(INITS)}")
        checked_mutations(self.mutations)
        if self.population_size < 2:
            raise GpLossError("--population must be at least 2")
        if self.slot_search not in SLOT_SEARCHES:
            raise GpLossError(f"unknown --slot-search {self.slot_search!r}; use {', '.join(SLOT_SEARCHES)}")
        if self.slot_search == "slotwise" and self.init != "scratch":
            raise GpLossError(
                f"--slot-search slotwise starts from the task's anchor, --init {self.init} from its own "
                "seeds: give one of them (--slot-search auto searches jointly with --init)"
            )
        if not 0.0 < self.slot_share <= 1.0:
            raise GpLossError(f"--slot-share must be a share in (0, 1], got {self.slot_share}")


@dataclass
class PipelineOptions:
    """Switches and parameters of the fitness pipeline (docs/architecture.md section 3). ``None``
    for an LRP parameter means the task's calibrated default; the size limits and the constant
    ``one`` bound screening and variation alike (:attr:`space`)."""

    gec: bool = option(True, negate=True, flag="--no-gec", help="Switch off the Gradient-Equivalence-Check.")
    lrp: bool = option(True, negate=True, flag="--no-lrp", help="Switch off the Loss-Rejection Protocol.")
    stop_invalid: bool = option(
        True, negate=True, flag="--no-stop-invalid", help="Keep training through non-finite losses."
    )
    lrp_protocol: str = option(
        "shared", flag="--lrp", choices=PROTOCOLS,
        help="LRP protocol: shared (an ordering check, then a head shared by all probe samples, "
        "trained on probe features); paper (free predictions, AutoLoss-Zero's, for the ablation).",
    )  # fmt: skip
    lrp_steps: int | None = option(None, type=int, help="LRP optimisation steps K (task default).")
    lrp_lr: float | None = option(None, type=float, help="LRP Adam learning rate (task default).")
    lrp_eta: float | None = option(None, type=float, help="LRP rejection threshold eta (task default).")
    max_height: int = option(MAX_HEIGHT, type=int, help="Tree height limit.")
    max_nodes: int = option(MAX_NODES, type=int, help="Tree node limit.")
    constant_one: bool = option(False, help="Add the constant 1 to the search space.")
    rungs: tuple[float, ...] | None = option(
        None, parse=parse_fractions,
        help="Multi-fidelity proxy: fractions of its steps where a candidate is scored and must clear "
        "a hurdle to train on, e.g. 0.25,1; 1 turns it off (default: the task's, see `tasks`).",
    )  # fmt: skip
    promote: float = option(
        PROMOTE,
        type=float,
        help="Share of candidates that train on past each rung (the hurdle is that quantile).",
    )

    @property
    def space(self) -> SpaceLimits:
        """The size limits and ``constant_one`` (this object is their one holder)."""
        return SpaceLimits(self.max_height, self.max_nodes, self.constant_one)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form for run.json."""
        data = asdict(self)
        data["rungs"] = list(self.rungs) if self.rungs else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PipelineOptions:
        """Inverse of :meth:`to_json` (unknown keys are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if known.get("rungs"):
            known["rungs"] = tuple(known["rungs"])
        return cls(**known)

    def validate(self) -> None:
        """A one-line error for the first setting that cannot work."""
        if self.max_height < 1 or self.max_nodes < 1:
            raise GpLossError("--max-height and --max-nodes must be at least 1")
        if self.lrp_steps is not None and self.lrp_steps < 0:
            raise GpLossError("--lrp-steps must be >= 0")
        if self.lrp_protocol not in PROTOCOLS:
            raise GpLossError(f"unknown --lrp protocol {self.lrp_protocol!r}; known: {', '.join(PROTOCOLS)}")
        if not 0 < self.promote <= 1:
            raise GpLossError(f"--promote must be a share in (0, 1], got {self.promote}")


@dataclass
class ExecutionOptions:
    """Where evaluations run (docs/architecture.md section 7). The flags default to ``None``: a
    resumed run keeps what its run.json says unless a flag is given."""

    backend: str = option(
        "serial", cli_default=None, help="Where evaluations run: serial, process or ray (default serial)."
    )
    workers: int = option(1, type=int, cli_default=None, help="Evaluations in flight at once (default 1).")
    eval_timeout: float | None = option(
        None, parse=parse_budget, help="Per-evaluation time limit, e.g. 90s (outcome timeout)."
    )
    gpus_per_eval: float | None = option(
        None, type=float,
        help="GPUs per evaluation; a fraction packs several on one GPU (default: 1 where there are GPUs).",
    )  # fmt: skip
    ray_address: str | None = option(None, help="Ray cluster to join (auto = the running one).")

    def validate(self) -> None:
        """A one-line error for the first setting that cannot work (the backend's name is checked
        by its registry, :data:`gp_loss.execution.backends.BACKENDS`)."""
        if self.workers < 1:
            raise GpLossError("--workers must be at least 1")
        if self.backend == "serial" and self.workers > 1:
            raise GpLossError(
                "the serial backend runs one evaluation at a time; use --backend process or ray"
            )
        if self.eval_timeout is not None and self.eval_timeout <= 0:
            raise GpLossError("--eval-timeout must be positive")
        if self.gpus_per_eval is not None and self.gpus_per_eval < 0:
            raise GpLossError("--gpus-per-eval must be >= 0")


@dataclass
class TrackingOptions:
    """Where a search is also logged (docs/architecture.md section 10): TensorBoard (one event
    directory per run under the folder) and MLflow (a server, a ``sqlite:///`` file or a folder)."""

    tensorboard: str | None = option(
        None, metavar="DIR",
        help="Also log the search to TensorBoard, in DIR/<run name> (pip install -e '.[tracking]').",
    )  # fmt: skip
    mlflow: str | None = option(
        None, metavar="URI",
        help="Also log the search as one MLflow run: a server, sqlite:///FILE.db or a folder "
        "(pip install -e '.[tracking]').",
    )  # fmt: skip

    def __bool__(self) -> bool:
        return bool(self.tensorboard or self.mlflow)

    def resolved(self) -> TrackingOptions:
        """Local paths made absolute, so that a resume from another folder logs to the same place."""
        uri = self.mlflow
        if uri and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            uri = "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
        elif uri and "://" not in uri and not uri.startswith(("file:", "databricks")):
            uri = str(Path(uri).resolve())
        board = str(Path(self.tensorboard).resolve()) if self.tensorboard else None
        return TrackingOptions(board, uri)

    def check_installed(self) -> None:
        """A one-line error naming what to install, before any run file is written."""
        import importlib.util

        for name in ("tensorboard", "mlflow"):
            if getattr(self, name) and importlib.util.find_spec(name) is None:
                raise GpLossError(
                    f"--{name} (keyword {name}=) needs {name}: pip install -e '.[tracking]' "
                    f"(or pip install {name})"
                )

    def validate(self) -> None:
        """Nothing to check until a backend opens (a failing tracker never stops a search)."""


#: The groups, in the order ``evolve --help`` lists them.
GROUPS = (EvolutionConfig, PipelineOptions, ExecutionOptions, TrackingOptions)
