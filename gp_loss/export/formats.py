"""Export a ``best.json``: standalone Python, TorchScript, a ``torch.export`` program, a LaTeX
formula, or the verified bundle of all of them (:mod:`gp_loss.export.bundle`)."""

from __future__ import annotations

import os
from pathlib import Path

from gp_loss.core.errors import GpLossError
from gp_loss.export.torchscript import export_torchscript
from gp_loss.trees.best_json import BestLoss
from gp_loss.trees.loss_module import describe
from gp_loss.trees.parse import parse_tree
from gp_loss.trees.standalone import module_source
from gp_loss.trees.symbolic import to_latex

FORMATS = ("python", "torchscript", "exported", "latex", "bundle")


def export_python(best: BestLoss, module: str = "loss") -> str:
    """Source of a file that needs only torch (``Loss`` for one slot; one class per slot and
    ``build_losses()`` for several); ``module``: the name it will be imported by."""
    return module_source(best.slots, describe(best), module)


def export_latex(best: BestLoss) -> str:
    """One line per slot: ``slot: L = \\operatorname{mean}(...)`` with the simplified formula."""
    lines = []
    for slot, loss in best.slots.items():
        formula = to_latex(parse_tree(loss.tree, loss.signature), loss.signature.adapter_class)
        lines.append(f"{slot}: L_{{\\mathrm{{{slot}}}}} = \\operatorname{{mean}}\\left[{formula}\\right]")
    return "\n".join(lines)


def export(
    best: BestLoss, fmt: str, out: str | os.PathLike | None = None, source: str | os.PathLike | None = None
) -> str | None:
    """Export ``best`` in ``fmt``; text formats return the text (and write it to ``out`` if given).
    ``source``: the best.json or run directory ``best`` came from (the bundle's provenance)."""
    if fmt not in FORMATS:
        raise GpLossError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt in ("torchscript", "exported", "bundle"):
        if out is None:
            what = "a folder" if fmt == "bundle" else "a binary file"
            raise GpLossError(f"--format {fmt} needs -o OUT ({what})")
        from gp_loss.export.bundle import export_program, write_bundle

        {"torchscript": export_torchscript, "exported": export_program}.get(
            fmt, lambda b, o: write_bundle(b, o, source)
        )(best, out)
        return None
    module = Path(out).stem if out is not None and Path(out).stem.isidentifier() else "loss"
    text = export_python(best, module) if fmt == "python" else export_latex(best) + "\n"
    if out is not None:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as err:
            raise GpLossError(f"cannot write {out}: {err.strerror}") from None
    return text
