"""``report --html``: one self-contained page, opened in a real headless Chromium (Debian's
package, driven by playwright) on a desktop and a phone's width; and the finalists' verdict
reaching the tracker after ``evolve --finalize``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.test_cli import call_cli

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: How the browser starts here: headless, as root, on a machine with no network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def finalized(tmp_path_factory) -> Path:
    """A short cls_digits search, finalized (1 finalist, 2 seeds) and logged to TensorBoard,
    with its report.html written."""
    pytest.importorskip("tensorboard", reason="the tracking extra: pip install -e '.[tracking]'")
    root = tmp_path_factory.mktemp("html")
    run = root / "run"
    done = call_cli(
        "evolve", "--task", "cls_digits", "--max-trained", "3", "--out", str(run), "--tensorboard",
        str(root / "tb"), "--finalize", "--finalize-top", "1", "--finalize-seeds", "2", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = call_cli("report", str(run), "--html")
    assert done.returncode == 0 and done.stdout.strip() == f"wrote {run / 'report.html'}"
    return run


def test_finalize_sends_the_finalists_and_verdict_to_the_tracker(finalized):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(
        str(finalized.parent / "tb" / finalized.name), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    tags = accumulator.Tags()
    assert "final/vs_cross_entropy" in tags["scalars"]
    assert "final/cross_entropy/accuracy" in tags["scalars"]
    assert "finalists/text_summary" in tags["tensors"]
    text = accumulator.Tensors("finalists/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "verdict:" in text and "cross_entropy" in text


def test_the_page_needs_nothing_outside_itself(finalized):
    page = (finalized / "report.html").read_text(encoding="utf-8")
    for outside in ("http://", "https://", "<script", "<link", "src=", "@import"):
        assert outside not in page, outside
    assert re.findall(r"url\((?!#)", page) == []  # only the SVGs' own clip paths, by id
    assert page.count("<svg") >= 2  # the scatter and at least one formula, inline


def test_the_page_renders_in_chromium_on_a_desktop_and_a_phone(finalized):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
    assert Path(CHROMIUM).is_file(), "Debian's chromium is missing: sh tests/install_browser.sh"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width, height in ((1280, 900), (390, 844)):
                page = browser.new_page(viewport={"width": width, "height": height})
                errors: list[str] = []
                page.on(
                    "console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None
                )
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.goto((finalized / "report.html").resolve().as_uri())
                stages = page.locator(".funnel .stage")
                assert stages.count() == 5 and stages.first.is_visible()
                assert re.match(r"explored\s*\d+ \(100%\)", stages.first.inner_text())
                scatter = page.locator(".scatter svg")
                assert scatter.is_visible() and scatter.bounding_box()["width"] > 200
                formulas = page.locator(".formula svg")
                assert formulas.count() >= 1 and formulas.first.is_visible()
                assert formulas.first.bounding_box()["height"] > 8
                assert "verdict:" in page.locator("p.verdict").inner_text()
                assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
                assert errors == []
        finally:
            browser.close()
