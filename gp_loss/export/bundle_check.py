"""Check an export bundle's loss files, in a fresh process that imports torch and nothing of gp-loss.

``verify`` runs ``python -I bundle_check.py BUNDLE RESULTS.json``: isolated mode, so that the
bundle's ``loss.py`` is shown to need only torch. Each check is one row ``{check, slot, status,
detail}`` with status ``pass``, ``fail`` or ``n/a``:

- ``values <file>``: ``loss.py``, ``loss.pt`` and ``loss.pt2`` reproduce the test vectors' value
  and gradient within the bundle's tolerance;
- ``gradcheck float64``: ``torch.autograd.gradcheck`` of ``loss.py`` on the test vectors in
  float64 (TorchScript and ``torch.export`` programs are float32 artefacts);
- ``edge cases <file>``: value and gradient finite on every edge case the bundle lists;
- ``bfloat16`` / ``float16``: ``loss.py`` on the test vectors in half precision, finite and
  within 5% (or 0.05) of float32; ``n/a`` where an operation has no half kernel on this device.
  bfloat16 has float32's range, so a loss must hold there. float16 cannot: its smallest normal
  number is 6e-5 and its largest 65504, while the safe primitives clamp at 1e-12 and saturate
  at 1e30, so many losses overflow or turn NaN in float16; that row is a ``warn`` (compute the
  loss in float32, as ``torch.autocast`` does for losses), never a ``fail``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import torch

HALF_TOLERANCE = 0.05


def _load(bundle: Path):
    """(slot names, {file: slot -> callable}) of the bundle's three loss files."""
    spec = importlib.util.spec_from_file_location("bundle_loss", bundle / "loss.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bundle_loss"] = module
    spec.loader.exec_module(module)
    vectors = torch.load(bundle / "test_vectors.pt", weights_only=True)
    slots = list(vectors["slots"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(bundle / "loss.pt"))
    program = torch.export.load(str(bundle / "loss.pt2")).module()
    if len(slots) == 1:
        python = {slots[0]: module.Loss()}
        files = {"loss.py": python, "loss.pt": {slots[0]: scripted}, "loss.pt2": {slots[0]: program}}
    else:
        built = module.build_losses()
        examples = {s: vectors["slots"][s]["arguments"] for s in slots}

        def through_program(slot):  # the program takes every slot's arguments, returns every loss
            def call(prediction, target):
                args = [a for s in slots for a in ((prediction, target) if s == slot else examples[s])]
                return program(*args)[slots.index(slot)]

            return call

        files = {
            "loss.py": {s: built[s] for s in slots},
            "loss.pt": {s: getattr(scripted, s) for s in slots},
            "loss.pt2": {s: through_program(s) for s in slots},
        }
    return vectors, files


def _value_and_grad(loss, prediction, target):
    pred = prediction.detach().clone().requires_grad_(True)
    value = loss(pred, target)
    if not value.requires_grad:
        return value.detach(), torch.zeros_like(pred)
    (grad,) = torch.autograd.grad(value, pred, allow_unused=True)
    return value.detach(), torch.zeros_like(pred) if grad is None else grad


def _finite(*tensors) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def check(bundle: Path) -> list[dict]:
    """Every check's row (see the module docstring)."""
    rows: list[dict] = []

    def row(check: str, slot: str, ok: bool | None, detail: str = "") -> None:
        status = "n/a" if ok is None else ("pass" if ok else "fail")
        rows.append({"check": check, "slot": slot, "status": status, "detail": detail})

    try:
        vectors, files = _load(bundle)
    except Exception as err:  # a file that does not load is a failed bundle, not a crash
        row("load loss.py, loss.pt, loss.pt2, test_vectors.pt", "-", False, f"{type(err).__name__}: {err}")
        return rows
    tolerance = vectors["tolerance"]
    for slot, data in vectors["slots"].items():
        prediction, target = data["arguments"]
        for name, losses in files.items():
            try:
                value, grad = _value_and_grad(losses[slot], prediction, target)
                close = torch.allclose(value, data["value"], **tolerance) and torch.allclose(
                    grad, data["grad"], **tolerance
                )
                detail = f"value {float(value):.6g} (expected {float(data['value']):.6g})"
                row(f"values {name}", slot, close, detail)
            except Exception as err:
                row(f"values {name}", slot, False, f"{type(err).__name__}: {str(err).splitlines()[0]}")
        doubled = prediction.detach().double().requires_grad_(True)
        target64 = target.double() if target.is_floating_point() else target
        try:
            loss = files["loss.py"][slot]
            ok = torch.autograd.gradcheck(
                lambda p, loss=loss, t=target64: loss(p, t), (doubled,), eps=1e-6, atol=1e-4
            )
            row("gradcheck float64 (loss.py)", slot, ok)
        except Exception as err:
            row("gradcheck float64 (loss.py)", slot, False, str(err).splitlines()[0])
        for name, losses in files.items():
            bad = []
            for case, (pred, targ) in data["edge_cases"].items():
                try:
                    if not _finite(*_value_and_grad(losses[slot], pred, targ)):
                        bad.append(case)
                except Exception as err:
                    bad.append(f"{case} ({type(err).__name__})")
            row(
                f"edge cases {name}",
                slot,
                not bad,
                "not finite: " + "; ".join(bad) if bad else f"{len(data['edge_cases'])} cases finite",
            )
        for dtype in (torch.bfloat16, torch.float16):
            name = f"{str(dtype).split('.')[1]} (loss.py)"
            half_target = target.to(dtype) if target.is_floating_point() else target
            try:
                value, grad = _value_and_grad(files["loss.py"][slot], prediction.to(dtype), half_target)
                gap = abs(float(value) - float(data["value"]))
                ok = _finite(value, grad) and gap <= HALF_TOLERANCE * max(1.0, abs(float(data["value"])))
                detail = f"value {float(value):.4g}, |difference| {gap:.2g}"
            except RuntimeError as err:
                message = str(err).splitlines()[0]
                if "not implemented for" in message:  # no half kernel on this device
                    row(name, slot, None, message)
                    continue
                ok, detail = False, message
            if dtype is torch.float16 and not ok:
                rows.append(
                    {
                        "check": name,
                        "slot": slot,
                        "status": "warn",
                        "detail": detail + " (compute in float32)",
                    }
                )
                continue
            row(name, slot, ok, detail)
    return rows


if __name__ == "__main__":
    results = check(Path(sys.argv[1]))
    Path(sys.argv[2]).write_text(json.dumps(results, indent=1))
