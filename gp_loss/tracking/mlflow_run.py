"""Logging a search to MLflow: one MLflow run per search, found again on resume through the
run directory's ``tracking.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gp_loss.tracking.points import Point
from gp_loss.trees.best_json import write_json_atomic

#: Where a run directory remembers its MLflow run (so that a resume logs into the same one).
STATE = "tracking.json"
#: MLflow keeps a tag value to this many characters.
TAG_MAX = 5000
#: MLflow takes at most this many metrics in one ``log_batch``.
BATCH = 1000


def experiment_name() -> str:
    """``$MLFLOW_EXPERIMENT_NAME`` as MLflow's own tools read it, else ``gp-loss``."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or "gp-loss"


def artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps its files: beside a ``sqlite:///`` database
    (``runs/mlflow.db`` -> ``runs/mlflow-artifacts``) instead of MLflow's default, ``./mlruns``
    in whatever folder the search was started from; the store's own default elsewhere."""
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri[len("sqlite:///") :])
    return (database.parent / f"{database.stem}-artifacts").resolve().as_uri()


class MlflowSink:
    """Params once, metrics in batches, the best formula as a tag, files as artifacts."""

    name = "MLflow"

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client: Any = None
        self.run_id = ""
        self.base = 0.0

    def open(self, run: Path, params: dict[str, Any], created: float) -> dict[str, int]:
        """Find or create this search's MLflow run; returns, per metric, the last step it holds
        (texts are tags, which a later value replaces)."""
        if self.uri.startswith(("http://", "https://")):  # an unreachable server: fail in seconds
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        import logging

        from mlflow.tracking import MlflowClient

        for name in ("mlflow.store.db.utils", "alembic"):  # table creation talks at INFO on every new file
            logging.getLogger(name).setLevel(logging.WARNING)

        self.client = MlflowClient(tracking_uri=self.uri)
        self.base = created
        state = run / STATE
        known = json.loads(state.read_text(encoding="utf-8")) if state.is_file() else {}
        if known.get("mlflow_uri") == self.uri and known.get("mlflow_run_id"):
            self.run_id = known["mlflow_run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            metrics = self.client.get_run(self.run_id).data.metrics
            return {
                key: max((m.step for m in self.client.get_metric_history(self.run_id, key)), default=0)
                for key in metrics
            }
        experiment = self.client.get_experiment_by_name(experiment_name())
        experiment_id = (
            experiment.experiment_id
            if experiment
            else self.client.create_experiment(experiment_name(), artifact_location=artifact_root(self.uri))
        )
        found = self.client.create_run(
            experiment_id, run_name=run.name, tags={"gp_loss.run_dir": str(run.resolve())}
        )
        self.run_id = found.info.run_id
        # remembered before any point: a kill from here on resumes into this MLflow run
        write_json_atomic(state, {**known, "mlflow_uri": self.uri, "mlflow_run_id": self.run_id})
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])
        return {}

    def write(self, points: list[Point]) -> None:
        from mlflow.entities import Metric

        metrics = []
        for point in points:
            stamp = int(1000 * (self.base + point.seconds))
            if point.text:
                self.client.set_tag(self.run_id, point.tag.replace("/", "."), point.text[:TAG_MAX])
            else:
                metrics.append(Metric(point.tag, point.value, stamp, point.step))
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + BATCH])

    def finish(
        self, step: int, texts: dict[str, str], scalars: dict[str, float], files: list[Path], status: str
    ) -> None:
        """Texts as files beside the run's files, scalars as metrics, then the run's status."""
        for tag, value in scalars.items():
            self.client.log_metric(self.run_id, tag, value, step=step)
        for tag, text in texts.items():
            self.client.log_text(self.run_id, text, f"{tag.replace('/', '_')}.md")
        for path in files:
            if path.is_dir():  # an export bundle
                self.client.log_artifacts(self.run_id, str(path), "bundle")
            elif path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status)

    def close(self) -> None:
        self.client = None
