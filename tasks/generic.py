"""A task around ordinary PyTorch training: your model, your data, your metric, no subclassing.

>>> task = GenericTask(
...     model=make_mlp,                      # a factory: () -> nn.Module
...     train_data=(x_train, y_train),       # tensors, a Dataset, or a factory returning one
...     val_data=(x_val, y_val),
...     test_data=(x_test, y_test),          # optional: final numbers (``retrain``)
...     adapter="softmax_onehot",            # or "regression", "box_iou_areas", your own
...     steps=300, batch_size=32, lr=1e-3,
... )
>>> result = gp_loss.search(task, budget="2m")

Training runs the shared loop (:mod:`tasks.training`: stop-invalid, seeding, progress). The
task pickles to process and Ray workers with its model and data; give the data as a factory
(a module-level function) where it is large, so workers load it themselves instead of receiving
it by value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset, default_collate

from gp_loss.adapters import adapter_class
from gp_loss.core.baselines import BASELINES
from gp_loss.core.errors import GpLossError
from tasks.base import LossFn, ProbeBatch, Slot, Task, choice, option
from tasks.training import Training

Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float]
DataSpec = Any  # (inputs, targets) tensors, a Dataset, or a zero-argument factory of either

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample correctness of class scores (N, C[, H, W]) against labels: 1.0 or 0.0 (the
    mean over pixels for dense labels)."""
    hits = (predictions.argmax(dim=1) == targets).float()
    return hits.reshape(len(hits), -1).mean(dim=1)


def mean_accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Accuracy over the whole split."""
    return float(accuracy(predictions, targets).mean())


def relative_error_score(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample minus the mean absolute error, in units of the targets' spread over the
    batch (a LRP metric that does not depend on the targets' scale)."""
    predictions = predictions.reshape(targets.shape).float()
    spread = (targets - targets.mean()).abs().mean().clamp(min=1e-6)
    error = (predictions - targets).abs().reshape(len(targets), -1).mean(dim=1)
    return -error / spread


def r2_score(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Coefficient of determination, 1 - SSE / SST (higher is better)."""
    predictions = predictions.reshape(targets.shape).float()
    total = (targets - targets.mean()).pow(2).sum().clamp(min=1e-12)
    return float(1 - (predictions - targets).pow(2).sum() / total)


#: Per adapter: (validation metric name and function, per-sample LRP metric); the fallbacks
#: when the user gives none. An adapter missing here needs the user's own metrics.
DEFAULT_METRICS: dict[str, tuple[str, Metric, Metric]] = {
    "softmax_onehot": ("accuracy", mean_accuracy, accuracy),
    "regression": ("r2", r2_score, relative_error_score),
}


class GenericTask(Task):
    """One searched loss slot for any model trained with a standard supervised loop.

    Args:
        model: a factory of a fresh model (called after seeding), e.g. a class or a function.
        train_data, val_data: the search trains on ``train_data`` and scores on ``val_data``:
            each an ``(inputs, targets)`` pair of tensors, a ``Dataset`` of pairs, or a
            zero-argument factory of either.
        test_data: where final numbers come from (``retrain``, ``train``); the final model then
            trains on train + val. Without it, final models train on train and score on val.
        adapter: the slot's input adapter (``softmax_onehot``, ``regression``, ...).
        adapter_options: its options (``{"ignore_index": -100}``).
        metric: validation metric ``(predictions, targets) -> float``, higher is better;
            default: the adapter's (accuracy, R^2).
        metric_name: its name in results (default: the default metric's name, else ``score``).
        sample_metric: per-sample metric ``(predictions, targets) -> (B,)`` for the
            Loss-Rejection Protocol; default: the adapter's.
        name: the task's name in run directories and results.
        spatial: the model's outputs are maps (N, C, H, W): the pooling primitives are allowed.
        steps, batch_size, lr, optimizer, weight_decay: the training recipe (``optimizer``:
            adam, adamw or sgd); ``final_steps`` for final trainings (default ``steps``).
        probe_size: samples in the LRP / GEC probe batch.
        lrp: Loss-Rejection Protocol settings (``{"eta": 0.3}``...); see ``Task.lrp_defaults``.
        baselines: the slot's baseline trees by name; default: every baseline registered for
            the adapter (``gp_loss.core.baselines``).
        budget, population: ``search``'s defaults for this task.
        final_protocol: ``plain`` (the default: final trainings keep your recipe) or
            ``annealed`` (a cosine schedule to 0 and evaluation of the weights' moving average,
            the built-in tasks' final protocol).
    """

    lrp_defaults: Mapping[str, Any] = {
        "shared": {"steps": 50, "lr": 0.1, "eta": 0.3},
        "paper": {"steps": 50, "lr": 0.1, "eta": 0.3},
    }

    def data_identity(self) -> None:
        """Data handed over as Python objects cannot be identified: not cached."""
        return None

    def __init__(
        self,
        model: Callable[[], nn.Module],
        train_data: DataSpec,
        val_data: DataSpec,
        *,
        test_data: DataSpec | None = None,
        adapter: str = "softmax_onehot",
        adapter_options: Mapping[str, Any] | None = None,
        metric: Metric | None = None,
        metric_name: str | None = None,
        sample_metric: Metric | None = None,
        name: str = "generic",
        spatial: bool = False,
        steps: int = 300,
        final_steps: int | None = None,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        probe_size: int = 8,
        lrp: Mapping[str, Any] | None = None,
        baselines: Mapping[str, str] | None = None,
        budget: str = "2m",
        population: int = 10,
        seed: int = 0,
        device: str = "cpu",
        final_protocol: str = "plain",
    ) -> None:
        defaults = DEFAULT_METRICS.get(adapter_class(adapter).name)
        if (metric is None or sample_metric is None) and defaults is None:
            raise GpLossError(f"adapter {adapter!r} has no default metrics: pass metric= and sample_metric=")
        self.name = name
        self.metrics = (metric_name or (defaults[0] if metric is None else "score"),)
        self.slots = (Slot("loss", adapter, spatial, "per-sample metric", dict(adapter_options or {})),)
        super().__init__(None, seed, device, final_protocol)
        self.model_factory = model
        self.data = {"train": train_data, "val": val_data, "test": test_data}
        self.final_split = "val" if test_data is None else "test"
        self.score = metric or defaults[1]
        self.sample_metric = sample_metric or defaults[2]
        self.steps = option("steps", steps, int, 1)
        self.final_steps = option("final_steps", final_steps or self.steps, int, 1)
        self.batch_size = option("batch_size", batch_size, int, 1)
        self.lr = option("lr", lr, float, 0)
        self.optimizer = choice("optimizer", optimizer, tuple(OPTIMIZERS))
        self.weight_decay = option("weight_decay", weight_decay, float, 0)
        self.probe_size = option("probe_size", probe_size, int, 1)
        if lrp:
            self.lrp_defaults = {
                protocol: {**settings, **lrp} for protocol, settings in type(self).lrp_defaults.items()
            }
        if baselines is None:
            baselines = {b.name: b.tree for b in BASELINES.values() if b.adapter == adapter}
        self.baselines = {label: {"loss": tree} for label, tree in baselines.items()}
        self.default_baseline = next(iter(self.baselines), "")
        self.default_budget = budget
        self.default_population = option("population", population, int, 2)
        self._loaded: dict[str, Dataset] = {}

    # -- data ------------------------------------------------------------------------------
    def dataset(self, split: str) -> Dataset:
        """The split as a ``Dataset`` of (input, target) pairs, loaded once."""
        if split not in self._loaded:
            spec = self.data[split]
            if callable(spec) and not isinstance(spec, Dataset):
                spec = spec()
            if isinstance(spec, (tuple, list)) and len(spec) == 2 and all(torch.is_tensor(t) for t in spec):
                spec = TensorDataset(*spec)
            if not isinstance(spec, Dataset):
                raise GpLossError(f"{self.name}: {split}_data must be (inputs, targets) tensors or a Dataset")
            self._loaded[split] = spec
        return self._loaded[split]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaded"] = {}  # workers load the data themselves (from the factories where given)
        return state

    def _batch(self, data: Dataset, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = default_collate([data[i] for i in indices])
        return inputs.to(self.device), targets.to(self.device)

    def predict(self, model: nn.Module, data: Dataset, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's outputs and the targets over a whole split."""
        model.eval()
        outputs, targets = [], []
        with torch.no_grad():
            for start in range(0, len(data), chunk):
                x, y = self._batch(data, list(range(start, min(start + chunk, len(data)))))
                outputs.append(model(x).cpu())
                targets.append(y.cpu())
        return torch.cat(outputs), torch.cat(targets)

    # -- LRP / GEC -------------------------------------------------------------------------
    def probe_batches(self) -> dict[str, ProbeBatch]:
        """A randomly initialised model's outputs on ``probe_size`` seeded training samples."""
        data = self.dataset("train")
        generator = torch.Generator().manual_seed(self.seed)
        pick = torch.randperm(len(data), generator=generator)[: self.probe_size].tolist()
        torch.manual_seed(self.seed + 1)
        model = self.model_factory().to(self.device).eval()
        x, y = self._batch(data, pick)
        with torch.no_grad():
            try:
                outputs = model(x)
            except RuntimeError as err:
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise GpLossError(
                    f"task {self.name!r}, slot 'loss': the model does not take the data's inputs "
                    f"(shape {tuple(x.shape)}, {str(x.dtype).replace('torch.', '')}): {first}"
                ) from err
        return {"loss": ProbeBatch(outputs.cpu(), y.cpu())}

    def probe_metric(self, slot: str, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.sample_metric(predictions, targets), dtype=torch.float32)

    # -- training --------------------------------------------------------------------------
    def _training(
        self,
        losses: Mapping[str, LossFn],
        data: Dataset,
        steps: int,
        seed: int,
        stop_invalid: bool,
        recipe: Mapping[str, bool] | None = None,
    ):
        loss_fn = losses["loss"]

        def step_losses(model: nn.Module, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
            indices = torch.randint(0, len(data), (self.batch_size,), generator=generator).tolist()
            x, y = self._batch(data, indices)
            return {"loss": loss_fn(model(x), y)}

        optimizer = OPTIMIZERS[self.optimizer]
        return Training(
            lambda: self.model_factory().to(self.device),
            step_losses,
            steps=steps,
            seed=seed,
            optimizer=lambda params: optimizer(params, lr=self.lr, weight_decay=self.weight_decay),
            **(recipe or {}),
            stop_invalid=stop_invalid,
            label=f"{self.name} training",
        )

    def _evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        outputs, targets = self.predict(model, self.dataset(split))
        return {self.metrics[0]: float(self.score(outputs, targets))}

    def proxy_training(self, losses: Mapping[str, LossFn], *, stop_invalid: bool = True) -> Training:
        return self._training(losses, self.dataset("train"), self.steps, self.seed, stop_invalid)

    def proxy_metrics(self, model: nn.Module) -> dict[str, float]:
        return self._evaluate(model, "val")

    def final_evaluate(self, losses: Mapping[str, LossFn], seed: int = 0) -> dict[str, float]:
        """With test data: train on train + val, score on test; else train on train, score on val."""
        if self.data["test"] is None:
            data, split = self.dataset("train"), "val"
        else:
            data, split = torch.utils.data.ConcatDataset([self.dataset("train"), self.dataset("val")]), "test"
        run = self._training(losses, data, self.final_steps, seed, True, self.final_recipe()).advance()
        run.raise_if_diverged(seed)
        return self._evaluate(run.model, split)
