"""``verify DIR``: is an export bundle intact, and does its loss behave?

First the manifest: every file's SHA-256 must match ``MANIFEST.json`` (an edited ``loss.py`` or
test vector is caught even where its numbers would pass). Then, in a fresh isolated process
that imports only torch (:mod:`gp_loss.export.bundle_check`), the three loss files reproduce the test
vectors, pass ``gradcheck`` in float64, stay finite on the adapter's edge cases and in half
precision. The result is a pass/fail table; ``verify`` exits 0 when every check passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.export.bundle import FILES, MANIFEST, sha256

#: The fresh process may take this long (TorchScript and torch.export loads, gradcheck).
TIMEOUT = 600


@dataclass
class Verification:
    """The rows of every check: ``check``, ``slot``, ``status`` (pass, fail, warn, n/a), ``detail``."""

    bundle: str
    rows: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        """No check failed."""
        return all(r["status"] != "fail" for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.bundle, "passed": self.passed, "checks": self.rows}

    def markdown(self) -> str:
        lines = [f"verify {self.bundle}", "", "| check | slot | result | detail |", "|---|---|---|---|"]
        lines += [f"| {r['check']} | {r['slot']} | {r['status']} | {r['detail']} |" for r in self.rows]
        failed = sum(r["status"] == "fail" for r in self.rows)
        lines += ["", "all checks pass" if self.passed else f"{failed} check(s) FAILED"]
        return "\n".join(lines)


def manifest_rows(bundle: Path) -> list[dict[str, Any]]:
    """One row per bundle file: present and unchanged since export."""
    try:
        recorded = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))["sha256"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        return [
            {"check": "manifest", "slot": "-", "status": "fail", "detail": f"unreadable {MANIFEST}: {err}"}
        ]
    rows = []
    for name in FILES:
        path = bundle / name
        if not path.is_file():
            ok, detail = False, "missing"
        elif name not in recorded:
            ok, detail = False, "not in the manifest"
        else:
            ok = sha256(path) == recorded[name]
            detail = "unchanged" if ok else "edited since export (SHA-256 differs)"
        rows.append(
            {"check": f"manifest {name}", "slot": "-", "status": "pass" if ok else "fail", "detail": detail}
        )
    return rows


def verify(bundle: str | Path) -> Verification:
    """Check the bundle in ``bundle`` (see the module docstring)."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise GpLossError(f"{bundle} is not a folder (export one with `export BEST --format bundle -o DIR`)")
    if not (bundle / MANIFEST).exists() and not (bundle / "loss.py").exists():
        raise GpLossError(f"{bundle} holds no bundle (no {MANIFEST}, no loss.py)")
    rows = manifest_rows(bundle)
    checker = Path(__file__).with_name("bundle_check.py")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "checks.json"
        try:
            done = subprocess.run(
                [sys.executable, "-I", str(checker), str(bundle.resolve()), str(out)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            rows.append(
                {
                    "check": "fresh process",
                    "slot": "-",
                    "status": "fail",
                    "detail": f"no answer in {TIMEOUT} s",
                }
            )
            return Verification(str(bundle), rows)
        if done.returncode != 0 or not out.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append({"check": "fresh process", "slot": "-", "status": "fail", "detail": last})
        else:
            rows += json.loads(out.read_text())
    return Verification(str(bundle), rows)
