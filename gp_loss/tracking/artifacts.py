"""What a tracker receives at the end of a search, after ``finalize`` and after ``export
--format bundle``: the run's files (best.json, run.json, report.md with its plots, report.html,
export bundles) and the finalists' table with its verdicts."""

from __future__ import annotations

import sys
from pathlib import Path

from gp_loss.core.errors import GpLossError

#: The run's own files a tracker keeps (those that exist).
RUN_FILES = ("run.json", "best.json", "report.md", "report.html")


def finalists_points(run: Path) -> tuple[dict[str, str], dict[str, float]]:
    """The finalists' table as text, and each row's mean target metric and the verdicts'
    paired differences as scalars (``final/...``), where ``finalize`` ran."""
    from gp_loss.results.report import finalists_of

    table = finalists_of(run)
    if not table:
        return {}, {}
    from gp_loss.results.finalists import finalists_markdown

    metric = table["metric"]
    scalars: dict[str, float] = {}
    for row in table["rows"]:
        mean = row["summary"].get(metric, {}).get("mean")
        if mean is not None:
            scalars[f"final/{_key(row['label'])}/{metric}"] = float(mean)
    for verdict in table.get("verdicts") or ():
        if verdict.get("mean") is not None:
            scalars[f"final/vs_{_key(verdict['baseline'])}"] = float(verdict["mean"])
    return {"finalists": finalists_markdown(table)}, scalars


def _key(label: str) -> str:
    """A row label as a metric name (MLflow takes letters, digits, ``_-./`` and spaces)."""
    return "".join(c if c.isalnum() or c in "_-. " else "_" for c in label.replace("#", "loss_"))


def end_of_search(run: Path) -> tuple[dict[str, str], dict[str, float], list[Path]]:
    """Texts, scalars and files for the trackers once a search stops: the reports are written
    first (report.md with its plots, report.html)."""
    from gp_loss.results.report import write_report
    from gp_loss.results.report_html import write_html_report

    plots: list[Path] = []
    try:
        write_report(run, baselines=False)
        write_html_report(run)
        plots = sorted(run.glob("*.png"))
    except (GpLossError, OSError, ValueError) as err:
        print(f"gp-loss: tracking: no report ({err}); logging the run's other files", file=sys.stderr)
    texts, scalars = finalists_points(run)
    bundles = [p.parent for p in run.glob("*/MANIFEST.json")]
    return texts, scalars, [run / name for name in RUN_FILES] + plots + bundles


def log_finalists(run: str | Path) -> None:
    """After ``finalize``: the finalists' table, verdicts and the updated reports and best.json
    go to the trackers the run's run.json names, if any (synchronously: the search is over)."""
    run = Path(run)
    if _tracked(run):
        _send(run, *end_of_search(run))


def log_bundle(source: str | Path, bundle: str | Path) -> None:
    """After ``export --format bundle`` of a tracked run's best.json (or the run itself): the
    bundle joins the run's MLflow files (under ``bundle/``)."""
    run = Path(source) if Path(source).is_dir() else Path(source).parent
    if _tracked(run):
        _send(run, {}, {}, [Path(bundle)])


def _tracked(run: Path) -> bool:
    """The folder holds a run whose run.json names a tracker."""
    from gp_loss.run.run_directory import recorded

    found = recorded(run, "tracking")
    return bool(isinstance(found, dict) and any(found.values()))


def _send(run: Path, texts: dict[str, str], scalars: dict[str, float], files: list[Path]) -> None:
    from gp_loss.core.settings import TrackingOptions
    from gp_loss.run.runlog import load_events
    from gp_loss.tracking.sinks import created_at, flat_settings, report_failure, sinks

    config, events = load_events(run)
    for sink in sinks(TrackingOptions(**config["tracking"]), run):
        try:
            sink.open(run, flat_settings(config), created_at(config))
            sink.finish(len(events), texts, scalars, files, "FINISHED")
            sink.close()
        except Exception as err:
            report_failure(sink, err, sys.stderr)
