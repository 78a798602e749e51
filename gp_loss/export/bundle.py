"""The export bundle: a found loss that a colleague can use, and check, without gp-loss.

``export BEST --format bundle -o DIR`` writes:

- ``best.json`` (the exchange format), ``loss.py`` (torch only), ``loss.pt`` (TorchScript),
  ``loss.pt2`` (a ``torch.export`` program, dynamic batch and spatial sizes);
- ``test_vectors.pt``: seeded arguments in each adapter's domain with the loss value and its
  gradient, and the adapter's edge cases (extremes, ties, empty and all-ignored batches);
- ``MODEL_CARD.md``: the formula in LaTeX and in words, how to use it, the task, metric and
  finalists' table, and its provenance (run, search settings, versions, git commit, date);
- ``loss_curve.png``: the loss over its main input beside the adapter's reference loss (cross
  entropy for probabilities): a reader sees at once whether it punishes confident mistakes,
  where it is flat, where it saturates, which a formula shows only to a careful reader;
- ``MANIFEST.json``: the SHA-256 of every other file, so ``verify`` catches an edited bundle.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from gp_loss.adapters import get_adapter
from gp_loss.core.errors import GpLossError
from gp_loss.trees.best_json import BestLoss, write_best
from gp_loss.trees.loss_module import describe, source_module
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.standalone import module_source, usage
from gp_loss.version import __version__

MANIFEST = "MANIFEST.json"
FILES = ("best.json", "loss.py", "loss.pt", "loss.pt2", "test_vectors.pt", "MODEL_CARD.md", "loss_curve.png")
#: Test vectors must reproduce within this tolerance (float32 on any CPU or GPU).
TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}
POOLING = ("maxpool3", "minpool3")


def slot_spatial(best: BestLoss, slot: str) -> bool:
    """Whether a slot's inputs have real H, W: as the task declares it where the task is
    registered, else whether its tree pools."""
    from tasks import TASKS

    factory = TASKS.get(best.task or "")
    if factory is not None and any(s.name == slot for s in factory.slots):
        return next(s for s in factory.slots if s.name == slot).spatial
    return any(name in best.slots[slot].tree for name in POOLING)


def examples(best: BestLoss) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each slot's seeded example arguments (seed 0, the same on every machine)."""
    out = {}
    for slot, loss in best.slots.items():
        generator = torch.Generator().manual_seed(0)
        out[slot] = get_adapter(loss.adapter, loss.options).example(generator, slot_spatial(best, slot))
    return out


def exported_program(best: BestLoss):
    """The loss as a ``torch.export`` program: one slot's ``Loss``, or ``SearchedLosses`` whose
    forward takes every slot's arguments in slot order. Batch, class, keypoint and spatial
    sizes are dynamic where the adapter allows it (:meth:`Adapter.dynamic_dims`)."""
    from torch.export import Dim, export

    module = source_module(best.slots, describe(best))
    model = module.Loss() if len(best.slots) == 1 else module.SearchedLosses()
    args, shapes, dims = [], [], {}
    for slot, (prediction, target) in examples(best).items():
        adapter = get_adapter(best.slots[slot].adapter, best.slots[slot].options)
        prefix = "" if len(best.slots) == 1 else f"{slot}_"
        for tensor, wanted in zip((prediction, target), adapter.dynamic_dims(slot_spatial(best, slot))):
            spec = {}
            for index, name in wanted.items():
                key = prefix + name
                dims.setdefault(key, Dim(key, min=0 if name == "batch" else 1))
                spec[index] = dims[key]
            args.append(tensor)
            shapes.append(spec)
    try:
        return export(model, tuple(args), dynamic_shapes=tuple(shapes))
    except Exception as err:  # torch.export's own errors name the construct it cannot trace
        raise GpLossError(f"torch.export cannot trace this loss: {str(err).splitlines()[0]}") from None


def export_program(best: BestLoss, path: str | os.PathLike) -> None:
    """Save :func:`exported_program` as ``.pt2`` (``torch.export.load(path).module()``)."""
    try:
        torch.export.save(exported_program(best), str(path))
    except OSError as err:
        raise GpLossError(f"cannot write {path}: {err.strerror}") from None


def test_vectors(best: BestLoss) -> dict[str, Any]:
    """Per slot: the example arguments, the loss value and its gradient w.r.t. the prediction,
    and the adapter's edge cases (arguments only: there the loss must merely be finite)."""
    from gp_loss.trees.loss_module import load_loss

    losses = load_loss(best)
    slots = {}
    for slot, (prediction, target) in examples(best).items():
        loss = losses if len(best.slots) == 1 else losses[slot]
        pred = prediction.clone().requires_grad_(True)
        value = loss(pred, target)
        (grad,) = torch.autograd.grad(value, pred, allow_unused=True)
        adapter = get_adapter(best.slots[slot].adapter, best.slots[slot].options)
        edges = adapter.edge_cases(torch.Generator().manual_seed(1), slot_spatial(best, slot))
        slots[slot] = {
            "arguments": [prediction, target],
            "value": value.detach(),
            "grad": torch.zeros_like(prediction) if grad is None else grad,
            "edge_cases": {name: list(pair) for name, pair in edges.items()},
        }
    return {"format": "gp-loss-test-vectors/1", "tolerance": dict(TOLERANCE), "slots": slots}


def _curve_png(best: BestLoss, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gp_loss.trees.loss_module import TreeLoss

    fig, axes = plt.subplots(1, len(best.slots), figsize=(4.5 * len(best.slots), 3.4), squeeze=False)
    for ax, (slot, loss) in zip(axes[0], best.slots.items()):
        adapter = get_adapter(loss.adapter, loss.options)
        curve = adapter.curve()
        if curve is None:
            ax.text(0.5, 0.5, f"{slot}: no curve for adapter {loss.adapter}", ha="center")
            continue
        label, xs, point = curve
        found = TreeLoss(loss.tree, loss.signature, loss.options)
        ax.plot(xs, [float(found(*point(float(x)))) for x in xs], label="found loss")
        reference = next(iter(type(adapter).calibration.get("good", {}).items()), None)
        if reference is not None:
            name, tree = reference
            ref = TreeLoss(tree, loss.signature, loss.options)
            ax.plot(xs, [float(ref(*point(float(x)))) for x in xs], "--", label=name.replace("_", " "))
        ax.set_xlabel(label)
        ax.set_ylabel("loss")
        ax.set_title(f"slot {slot}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _git_commit() -> str | None:
    """The project's git commit, when gp-loss runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def provenance(best: BestLoss, source: Path | None) -> dict[str, Any]:
    """Where the loss came from: its run and search settings (when ``source`` is a run
    directory), the versions of what made it, the project's commit and the date."""
    import deap

    run = source if source is not None and source.is_dir() else (source.parent if source else None)
    info: dict[str, Any] = {"loss id": best.extra.get("id")}
    config_path = run / "run.json" if run is not None else None
    if config_path is not None and config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        info.update(
            run=run.name,
            created=config.get("created"),
            task_options=config.get("task_options"),
            limits=config.get("limits"),
            evolution={
                k: config.get("evolution", {}).get(k)
                for k in ("population_size", "seed", "init", "random_search")
            },
            pipeline={k: config.get("pipeline", {}).get(k) for k in ("lrp_protocol", "gec", "lrp", "rungs")},
        )
    info.update(
        versions={
            "python": platform.python_version(),
            "torch": torch.__version__,
            "deap": deap.__version__,
            "gp_loss": __version__,
        },
        git_commit=_git_commit(),
        exported=_dt.datetime.now().isoformat(timespec="seconds"),
    )
    return info


def model_card(best: BestLoss, origin: dict[str, Any], hashes: dict[str, str]) -> str:
    """``MODEL_CARD.md``."""
    from gp_loss.results.finalists import finalists_markdown
    from gp_loss.trees.symbolic import to_latex, to_words

    lines = [f"# Found loss: {best.task or 'unknown task'}, metric {best.metric or 'unknown'}", ""]
    lines += ["## Use", "", "```python", *usage(best.slots), "```", ""]
    lines += ["`loss.pt`: `torch.jit.load`; `loss.pt2`: `torch.export.load(path).module()`; check them all:"]
    lines += ["`python cli.py verify DIR` (gp-loss) reproduces `test_vectors.pt` and fuzzes the domain.", ""]
    lines += ["## Formula", "", "The loss is the mean, over the valid elements, of:", ""]
    for slot, loss in best.slots.items():
        nodes = parse_tree(loss.tree, loss.signature)
        adapter = loss.signature.adapter_class
        lines += [
            f"- **{slot}** (adapter `{loss.adapter}`): $${to_latex(nodes, adapter)}$$",
            f"  - in words: {to_words(nodes, adapter)}",
            f"  - tree: `{loss.tree}`",
        ]
    fitness = "n/a" if best.fitness is None else f"{best.fitness:.4f}"
    lines += [
        "",
        "## Task",
        "",
        f"task `{best.task}`, target metric `{best.metric}`, proxy fitness {fitness}",
    ]
    metrics = best.extra.get("metrics") or {}
    if metrics:
        lines.append("proxy metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    finalists = best.extra.get("finalists")
    lines += ["", "## Is it better than the baseline?", ""]
    if finalists:
        lines.append(finalists_markdown(finalists))
    else:
        lines.append(
            "Not measured: no `finalize` ran on this loss's search (its fitness is one short proxy training)."
        )
    lines += ["", "## Provenance", "", "```json", json.dumps(origin, indent=1, default=str), "```"]
    lines += ["", "## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in hashes.items()]
    lines += ["", "![loss curve](loss_curve.png)", ""]
    return "\n".join(lines)


def sha256(path: Path) -> str:
    """The hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(best: BestLoss, out: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """Write the bundle for ``best`` into the folder ``out`` (created; an existing folder must
    be empty or hold an earlier bundle). ``source``: the best.json or run it came from."""
    from gp_loss.export.torchscript import export_torchscript

    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists())):
        raise GpLossError(f"{out} is not an empty folder or an earlier bundle; pick another -o")
    out.mkdir(parents=True, exist_ok=True)
    write_best(out / "best.json", best)
    (out / "loss.py").write_text(module_source(best.slots, describe(best), module="loss"), encoding="utf-8")
    export_torchscript(best, out / "loss.pt")
    export_program(best, out / "loss.pt2")
    torch.save(test_vectors(best), out / "test_vectors.pt")
    _curve_png(best, out / "loss_curve.png")
    origin = provenance(best, Path(source) if source is not None else None)
    hashes = {name: sha256(out / name) for name in FILES if name != "MODEL_CARD.md"}
    (out / "MODEL_CARD.md").write_text(model_card(best, origin, hashes), encoding="utf-8")
    hashes["MODEL_CARD.md"] = sha256(out / "MODEL_CARD.md")
    (out / MANIFEST).write_text(json.dumps({"format": "gp-loss-bundle/1", "sha256": hashes}, indent=1) + "\n")
    return out
