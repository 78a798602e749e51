"""Choosing a backend by name: the one place that knows the three implementations (they
import :mod:`gp_loss.execution.base`, never the other way round). Each registers a factory in
:data:`BACKENDS`; the implementations load only when chosen (Ray is an optional extra)."""

from __future__ import annotations

from collections.abc import Callable

from gp_loss.core.errors import GpLossError
from gp_loss.core.settings import ExecutionOptions
from gp_loss.execution.base import Backend, WorkerSpec
from primitives.registry import Registry

#: name -> factory(spec, workers, local_evaluate, eval_timeout, gpus_per_eval, ray_address)
BACKENDS: Registry[Callable[..., Backend]] = Registry("backend", GpLossError)


def _serial(spec, workers, local_evaluate, eval_timeout, gpus_per_eval, ray_address) -> Backend:
    from gp_loss.execution.serial import SerialBackend

    return SerialBackend(local_evaluate, eval_timeout)


def _process(spec, workers, local_evaluate, eval_timeout, gpus_per_eval, ray_address) -> Backend:
    from gp_loss.execution.process import ProcessBackend

    gpus = 1.0 if gpus_per_eval is None else gpus_per_eval  # no GPU visible: ignored
    return ProcessBackend(spec, workers, eval_timeout=eval_timeout, gpus_per_eval=gpus)


def _ray(spec, workers, local_evaluate, eval_timeout, gpus_per_eval, ray_address) -> Backend:
    from gp_loss.execution.ray_backend import RayBackend

    return RayBackend(
        spec, workers, address=ray_address, eval_timeout=eval_timeout, gpus_per_eval=gpus_per_eval
    )


BACKENDS.register("serial", _serial)
BACKENDS.register("process", _process)
BACKENDS.register("ray", _ray)


def checked(options: ExecutionOptions) -> Callable[..., Backend]:
    """The factory of ``options.backend`` once the name and the settings are checked (one
    line for the first that cannot work): what a run checks before it writes anything."""
    factory = BACKENDS.lookup(options.backend)
    options.validate()
    return factory


def make_backend(
    name: str,
    spec: WorkerSpec,
    *,
    workers: int = 1,
    local_evaluate: Callable | None = None,
    eval_timeout: float | None = None,
    gpus_per_eval: float | None = None,
    ray_address: str | None = None,
) -> Backend:
    """Build a backend by name (``serial``, ``process``, ``ray``).

    ``gpus_per_eval=None`` means one GPU per evaluation where there are GPUs (docs/architecture.md section 7)
    and none on CPU-only machines.
    """
    factory = checked(ExecutionOptions(name, workers, eval_timeout, gpus_per_eval, ray_address))
    return factory(spec, workers, local_evaluate, eval_timeout, gpus_per_eval, ray_address)
