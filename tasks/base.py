"""The Task interface: everything the search needs to know about a problem (docs/architecture.md section 5)."""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from gp_loss.adapters import get_adapter
from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import MUTATIONS
from gp_loss.core.signature import SlotSignature
from tasks.training import FINAL_PROTOCOLS, Training, TrainResult, rung_results

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Slot:
    """A searched loss slot.

    Attributes:
        name: slot name (``cls``, ``reg``).
        adapter: input adapter feeding the slot's trees (a name in ``gp_loss.adapters``).
        spatial: inputs have real H, W (pooling allowed).
        probe_metric: name of the per-sample metric the Loss-Rejection Protocol uses.
        adapter_options: the adapter's options for this slot (``{"ignore_index": 0}`` where 255
            is a real label); recorded in ``best.json`` and the exported module.
    """

    name: str
    adapter: str
    spatial: bool
    probe_metric: str
    adapter_options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        get_adapter(self.adapter, self.adapter_options)  # unknown adapter or option: one line

    def signature(self, constant_one: bool = False) -> SlotSignature:
        """The slot's search-space signature."""
        return SlotSignature(self.adapter, self.spatial, constant_one)


@dataclass
class ProbeBatch:
    """The fixed probe batch of one slot for LRP and GEC.

    Attributes:
        predictions: raw outputs of a randomly initialised network for B samples (logits or
            boxes); the Loss-Rejection Protocol optimises a copy of them.
        targets: the matching targets (labels or boxes).
    """

    predictions: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.predictions.shape[0])


@dataclass
class HeadProbe:
    """Probe samples for the shared-head Loss-Rejection Protocol of one slot.

    The protocol trains a fresh head (1x1 convolutions for spatial features) on these
    fixed features with the candidate loss: every sample shares the head's weights, as they
    share a network's weights in training, so a loss that only works on free predictions (or
    that collapses a shared model onto one class) is caught.

    Attributes:
        features: (S, F) or (S, F, h, w) features of the probe samples, taken from a randomly
            initialised network (the protocol standardises each channel).
        targets: the matching targets, as the slot's loss receives them.
        outputs: channels the head produces (C for logits, 4 for box deltas).
        decode: turns the head's output into the slot's raw predictions (box deltas into
            boxes, low-resolution logits into full-resolution ones); ``None``: identity.
        per_channel: z-score each feature channel (True) or scale all by one standard
            deviation, keeping what the channels share across samples (False); chosen per
            task by ``bench lrp --against-training`` (see
            :func:`gp_loss.fitness.rejection.normalise`).
    """

    features: torch.Tensor
    targets: torch.Tensor
    outputs: int
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None
    per_channel: bool = True

    def __len__(self) -> int:
        return int(self.features.shape[0])


class Task(abc.ABC):
    """A problem the search optimises losses for.

    Subclasses declare ``slots``, ``metrics`` (first = default) and ``baselines``
    (name -> slot -> tree string), implement the abstract methods, and may override any other
    attribute below: this class declares everything the engine reads from a task.
    """

    #: Registry name (``--task``): set by ``@register_task(name)``; a task object that is not
    #: registered (:class:`tasks.generic.GenericTask`, your own) sets it itself.
    name: str = ""
    #: The searched loss slots, in genome order.
    slots: tuple[Slot, ...] = ()
    #: Target metrics, higher is better; the first is the default ``--metric``.
    metrics: tuple[str, ...] = ()
    #: Baselines written as trees: name -> slot -> tree string. They seed ``--init baselines``
    #: and calibrate the Loss-Rejection Protocol; the built-in tasks name them ``tree:...``,
    #: since a tree follows the mean-of-tree convention (the cross-entropy tree is CE / C).
    baselines: Mapping[str, Mapping[str, str]] = {}
    #: The tree baseline that ``--slot-search slotwise`` holds the slots it is not searching at
    #: (a key of ``baselines``; empty: the tree form of :attr:`default_baseline` where there is
    #: one, else the first tree baseline by name).
    anchor_baseline: str = ""
    #: Reference baselines: each loss as its paper or library defines it, at its published
    #: weight (what ``train``, ``finalize`` and ``bench paper`` compare against): name ->
    #: ``factory(task)`` returning slot -> loss function (``None`` keeps a slot's stock loss
    #: where the model has one).
    reference_losses: Mapping[str, Callable[[Any], Mapping[str, LossFn | None]]] = {}
    #: ``evolve``'s wall-clock budget when no limit is given (``90s``, ``10m``, ``2h``).
    default_budget: str = "2m"
    #: ``evolve``'s population size when ``--population`` is not given.
    default_population: int = 20
    #: ``evolve``'s mutations when ``--mutations`` is not given (names from
    #: :data:`gp_loss.core.settings.KNOWN_MUTATIONS`): DEAP's four unless a task adds ``ratio``.
    default_mutations: tuple[str, ...] = MUTATIONS

    @classmethod
    def evolution_defaults(cls) -> dict[str, Any]:
        """The evolution settings the task gives where its user names none (``evolve``'s flags
        and ``gp_loss.search``'s keywords override them)."""
        return {"population_size": cls.default_population, "mutations": cls.default_mutations}

    #: Optimisation steps of one proxy training (0: not trained in steps); rungs and
    #: ``bench fidelity`` levels are fractions of it.
    steps: int = 0
    #: Rungs of the multi-fidelity proxy (fractions of :attr:`steps`, the last 1): a candidate
    #: is scored at each and trains on only past the rung's hurdle (``evolve --rungs``). Chosen
    #: per task from ``bench fidelity`` (docs/BENCHMARKS.md); ``(1.0,)``: one full training.
    default_rungs: tuple[float, ...] = (1.0,)
    #: The split :meth:`final_evaluate` scores on (reports name it).
    final_split: str = "test"
    #: True where the Loss-Rejection Protocol scores probe samples with the metric the search reads
    #: (``bench lrp`` then calibrates every metric by default).
    probe_follows_metric: bool = False
    #: The baseline a found loss is judged against: the task's strongest published setting, a
    #: key of ``reference_losses`` (or of ``baselines``). ``finalize`` and ``bench paper`` give
    #: their verdict against it. Empty: the first reference by name, else the first tree.
    default_baseline: str = ""
    #: Loss-Rejection Protocol settings per protocol: ``shared`` (the default: an ordering check,
    #: then a head shared by all samples, trained on :meth:`probe_head` features, or free
    #: predictions where the task gives none) and ``paper`` (free predictions, the paper's). Each
    #: holds ``steps``, ``lr`` and ``eta`` (a number, or ``{slot: eta}`` where slots' metrics
    #: differ in scale), ``shared`` also ``hidden`` (units of its two-layer head; 0: linear) and
    #: optionally ``max_grad_ratio`` (multi-slot tasks: reject a loss whose probe gradient exceeds
    #: that multiple of the slot's first tree baseline's). A flat dict is read as ``paper``;
    #: without ``shared``, that protocol uses the ``paper`` values.
    lrp_defaults: Mapping[str, Any] = {
        "shared": {"steps": 50, "lr": 0.01, "eta": 0.5, "hidden": 64},
        "paper": {"steps": 50, "lr": 0.1, "eta": 0.1},
    }

    def __new__(cls, *args: Any, **kwargs: Any) -> Task:
        task = super().__new__(cls)
        task._constructor_arguments = (args, kwargs)  # what rebuilds it in a worker: options()
        return task

    def options(self) -> dict[str, Any]:
        """The keyword arguments this task was built with, positional ones named: process and
        Ray workers rebuild the task from them (``get_task(task.name, **task.options())``)."""
        args, kwargs = getattr(self, "_constructor_arguments", ((), {}))
        try:
            bound = inspect.signature(type(self).__init__).bind(self, *args, **kwargs)
        except TypeError as err:
            raise GpLossError(f"task {self.name!r}: cannot name its constructor arguments ({err})") from None
        options: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:
            kind = bound.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise GpLossError(f"task {self.name!r} takes *args: workers cannot rebuild it by keyword")
            elif kind is inspect.Parameter.VAR_KEYWORD:
                options.update(value)
            else:
                options[name] = value
        return options

    def __init__(
        self, metric: str | None = None, seed: int = 0, device: str = "cpu", final_protocol: str = "annealed"
    ) -> None:
        if metric is not None and metric not in self.metrics:
            raise GpLossError(
                f"task {self.name!r} has no metric {metric!r}; known: {', '.join(self.metrics)}"
            )
        self.metric = metric or self.metrics[0]
        self.seed = option("seed", seed, int)
        self.device = torch.device(_resolve_device(device))
        self.final_protocol = choice("final protocol", final_protocol, tuple(FINAL_PROTOCOLS))

    #: The proxy metric the search's fitness reads, by target metric, where it is not the
    #: target itself: one that ranks the target's final results better (seg_voc: FWIoU for mIoU).
    #: A task that names one takes a ``fitness_metric`` option (older runs resume with it).
    fitness_for: ClassVar[Mapping[str, str]] = {}
    #: A task option's choice, over :attr:`fitness_for` (seg_voc's ``fitness_metric``).
    _fitness_metric: str | None = None

    @property
    def fitness_metric(self) -> str:
        """The proxy metric the search's fitness reads (the target metric unless
        :attr:`fitness_for` or the task's options name another)."""
        return self._fitness_metric or self.fitness_for.get(self.metric, self.metric)

    def final_recipe(self) -> dict[str, bool]:
        """The :class:`tasks.training.Training` keywords of a final training under
        ``final_protocol`` (``annealed``: a cosine schedule to 0 and the weights' moving average)."""
        return dict(FINAL_PROTOCOLS[self.final_protocol])

    @property
    def reference_baseline(self) -> str:
        """:attr:`default_baseline`, or the first reference (else tree) baseline by name."""
        return self.default_baseline or sorted(self.reference_losses or self.baselines)[0]

    def baseline_names(self) -> list[str]:
        """Every baseline a training can name: the references, then the tree forms."""
        return [*sorted(self.reference_losses), *sorted(set(self.baselines) - set(self.reference_losses))]

    def slot(self, name: str) -> Slot:
        """The slot called ``name``."""
        return next(s for s in self.slots if s.name == name)

    @abc.abstractmethod
    def probe_batches(self) -> Mapping[str, ProbeBatch]:
        """The fixed probe batch of every slot, slot name -> :class:`ProbeBatch` (the same every
        call: seeded). The engine calls it once per task object."""

    def probe_batch(self, slot: str) -> ProbeBatch:
        """The probe batch of one slot (from :meth:`probe_batches`)."""
        return self.probe_batches()[slot]

    def probe_heads(self) -> Mapping[str, HeadProbe]:
        """Features of probe samples for the shared-head rejection protocol, slot name ->
        :class:`HeadProbe` (the same every call: seeded). A slot left out (the default: all)
        is judged on free predictions instead."""
        return {}

    def probe_head(self, slot: str) -> HeadProbe | None:
        """The head probe of one slot, or ``None`` (from :meth:`probe_heads`)."""
        return self.probe_heads().get(slot)

    @abc.abstractmethod
    def probe_metric(self, slot: str, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample target metric xi(y_hat_b, y_b), shape (B,), higher is better."""

    def proxy_training(self, losses: Mapping[str, LossFn], *, stop_invalid: bool = True) -> Training | None:
        """The proxy training as a resumable :class:`tasks.training.Training` (the proxy model,
        its batches and recipe), which lets it be evaluated part-way (multi-fidelity rungs).
        ``None`` (the default): the task trains only in one go, in :meth:`proxy_train`."""
        return None

    def proxy_metrics(self, model: torch.nn.Module) -> dict[str, float]:
        """Every metric of a proxy model on the proxy validation split (with
        :meth:`proxy_training`)."""
        raise GpLossError(f"task {self.name!r} has no proxy_metrics")

    def proxy_train(self, losses: Mapping[str, LossFn], *, stop_invalid: bool = True) -> TrainResult:
        """Train the proxy model with one loss per slot; metrics on the proxy validation split.

        The default runs :meth:`proxy_training` to its end and scores it with
        :meth:`proxy_metrics`; a task may override this instead of those two."""
        training = self.proxy_training(losses, stop_invalid=stop_invalid)
        if training is None:
            raise GpLossError(f"task {self.name!r} implements neither proxy_train nor proxy_training")
        (result,) = rung_results(training, [training.steps], self.proxy_metrics)
        return result

    def proxy_rungs(
        self, losses: Mapping[str, LossFn], steps: Sequence[int], *, stop_invalid: bool = True
    ) -> Iterator[TrainResult]:
        """The proxy training evaluated after each of ``steps`` (ascending), training on from
        where it stopped in between: one :class:`TrainResult` per rung, none after a
        divergence. Stop iterating to stop training. A task without :meth:`proxy_training`
        offers only its full proxy training (``steps`` of one element)."""
        training = self.proxy_training(losses, stop_invalid=stop_invalid)
        if training is None:
            if len(steps) != 1:
                raise GpLossError(f"task {self.name!r} cannot evaluate its proxy training part-way")
            yield self.proxy_train(losses, stop_invalid=stop_invalid)
            return
        yield from rung_results(training, steps, self.proxy_metrics)

    def final_evaluate(self, losses: Mapping[str, LossFn], seed: int = 0) -> dict[str, float]:
        """Train the final model with ``seed`` and return every metric on the test split.

        Raises :class:`tasks.training.TrainingDiverged` when the training stops at an invalid
        loss value: a diverged training has no score (it is never reported as 0.0)."""
        raise GpLossError(f"task {self.name!r} has no final evaluation")

    def _set_training_options(
        self,
        steps: int,
        final_steps: int | None,
        batch_size: int,
        lr: float,
        probe_images: int,
        *,
        final_factor: float,
    ) -> None:
        """Check and set the training options the vision tasks share (``final_steps`` defaults
        to ``final_factor`` times ``steps``)."""
        self.steps = option("steps", steps, int, 1)
        self.final_steps = option("final_steps", final_steps or round(final_factor * self.steps), int, 1)
        self.batch_size = option("batch_size", batch_size, int, 1)
        self.lr = option("lr", lr, float, 0)
        self.probe_images = option("probe_images", probe_images, int, 1)

    def data_identity(self) -> dict[str, Any] | None:
        """What identifies the task's data beyond its options (the folders and image ids of a
        real dataset): part of the persistent search cache's key (:mod:`gp_loss.engine.search_cache`). ``{}``
        (the default): the options alone fix the data; ``None``: unknown, the task is not
        cached."""
        return {}

    def worst_fitness(self) -> float:
        """Fitness given to diverged or timed-out trainings."""
        return 0.0

    def describe(self) -> dict[str, Any]:
        """JSON-able description for ``run.json`` and ``cli.py tasks``."""
        return {
            "name": self.name,
            "metric": self.metric,
            "fitness_metric": self.fitness_metric,
            "metrics": list(self.metrics),
            "slots": {
                s.name: {
                    "adapter": s.adapter,
                    "adapter_options": dict(s.adapter_options),
                    "spatial": s.spatial,
                    "probe_metric": s.probe_metric,
                }
                for s in self.slots
            },
            "baselines": sorted(self.baselines),
            "reference_losses": sorted(self.reference_losses),
        }


def holdout_split(ids: list, holdout: float, where: str) -> tuple[list, list]:
    """The first and the last ``holdout`` share of ``ids`` (search training / validation on a
    real dataset without a labelled test split); one-line error if either would be empty."""
    cut = int(len(ids) * (1 - option("holdout", holdout, float, 0)))
    if cut <= 0 or cut >= len(ids):
        raise GpLossError(f"{where}: too few images to hold out {holdout:.0%} for validation")
    return ids[:cut], ids[cut:]


def choice(name: str, value: str, known: tuple[str, ...]) -> str:
    """A task option that must be one of ``known`` (one-line error listing them)."""
    if value not in known:
        raise GpLossError(f"unknown {name} {value!r}; known: {', '.join(known)}")
    return value


def option(name: str, value: Any, kind: type, minimum: float | None = None) -> Any:
    """A task option checked and converted (``--task-option steps=abc`` -> one-line error)."""
    try:
        converted = kind(value)
        if isinstance(value, bool) or (kind is int and float(value) != converted):
            raise ValueError
    except (TypeError, ValueError):
        raise GpLossError(f"task option {name}={value!r} must be {kind.__name__}") from None
    if minimum is not None and converted < minimum:
        raise GpLossError(f"task option {name}={value!r} must be at least {minimum}")
    return converted


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise GpLossError(f"unknown device {device!r}; use auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GpLossError("--device cuda asked for, but torch sees no CUDA device here")
    return device


def split_identity(root: Any, split: str, ids: Sequence[Any]) -> dict[str, Any]:
    """A split's data in a cache key: its folder, split name and a hash of its item ids."""
    import hashlib
    import json
    from pathlib import Path

    digest = hashlib.sha256(json.dumps([str(i) for i in ids]).encode()).hexdigest()[:16]
    return {"root": str(Path(root).resolve()), "split": split, "items": len(ids), "ids": digest}
