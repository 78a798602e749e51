"""Search memory: a persistent cache of every judged loss, shared by runs (SQLite, WAL mode).

A run consults it before doing any work on a candidate: a genome judged before, under the same
task fingerprint, ends as ``cached`` with the stored result (its outcome, LRP gains, GEC key,
proxy rungs and metrics), and so does a genome whose gradient-equivalence key matches a stored
trained one. ``cached`` is counted apart from ``trained``, so budgets in trainings and the
efficiency ablations stay honest. Every result a run computes is stored once (the first writer
wins; an equal result would be recomputed anyway).

The task fingerprint hashes what decides a result: the task's name, options and data identity,
the proxy and Loss-Rejection settings, the search space's limits, and the versions that change
numerics (:func:`task_fingerprint`). A task whose data cannot be identified
(``Task.data_identity()`` is ``None``, e.g. tensors handed to a generic task) is not cached.

Several processes may share one cache at once: SQLite's write-ahead log lets readers run beside
the one writer, each write is one short transaction, and a writer waits (``busy_timeout``)
rather than fails; processes open the file one at a time (``PATH.lock``). Only the search
driver touches the cache (process and Ray workers never do). A file that is not a gp-loss cache is a one-line error before the run starts; a cache that
breaks mid-run is switched off with one warning, and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gp_loss.core.errors import GpLossError
from gp_loss.core.events import DIVERGED, INVALID, REJECTED, TRAINED
from gp_loss.core.file_lock import exclusive
from gp_loss.fitness.candidate import Evaluation
from gp_loss.version import __version__

FORMAT = "gp-loss-cache/1"
#: Outcomes worth storing: properties of the loss under the fingerprint, not of one run.
STORED = (INVALID, REJECTED, DIVERGED, TRAINED)
#: The environment variable naming the default cache (a path, or ``off``).
ENVIRONMENT = "GP_LOSS_SEARCH_CACHE"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    fingerprint TEXT PRIMARY KEY, task TEXT NOT NULL, description TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    fingerprint TEXT NOT NULL, genome TEXT NOT NULL, outcome TEXT NOT NULL, gec_key TEXT,
    fitness REAL, result TEXT NOT NULL, run TEXT, created REAL NOT NULL,
    PRIMARY KEY (fingerprint, genome)
);
CREATE INDEX IF NOT EXISTS results_gec ON results (fingerprint, gec_key);
"""


def genome_of(key: str) -> dict[str, str]:
    """A stored genome key (:attr:`gp_loss.fitness.candidate.Candidate.key`) as ``{slot: tree}``."""
    return dict(part.split("=", 1) for part in key.split(" | "))


def default_path() -> Path | None:
    """``$GP_LOSS_SEARCH_CACHE`` (``off``: none), else ``search_cache.sqlite`` in the cache folder."""
    from tasks.data.cache import cache_root

    chosen = os.environ.get(ENVIRONMENT)
    if chosen:
        return None if chosen == "off" else Path(chosen)
    return cache_root() / "search_cache.sqlite"


def resolve(choice: str | os.PathLike | None) -> Path | None:
    """``--cache``: ``None`` for the default, ``off``, or a path."""
    if choice is None or str(choice) == "default":
        return default_path()
    return None if str(choice) == "off" else Path(choice)


class SearchCache:
    """One cache file. Every method is one short transaction."""

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.enabled = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One process opens at a time: switching a fresh file to WAL and creating the schema
            # take locks that SQLite may refuse at once, without waiting out busy_timeout, when
            # two processes open the same new file together ("database is locked").
            with exclusive(self.path.with_name(self.path.name + ".lock")):
                self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
                self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._check()
        except (sqlite3.DatabaseError, OSError) as err:
            raise GpLossError(
                f"search cache {self.path}: not usable ({err}); move it away, or run with --cache off"
            ) from None

    def _check(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise sqlite3.DatabaseError(f"a database of something else (tables {', '.join(sorted(tables))})")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
        (found,) = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        if found != FORMAT:
            raise sqlite3.DatabaseError(f"format {found!r}, this version reads {FORMAT!r}")
        if self._db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("the file is damaged (PRAGMA quick_check)")

    def _guarded(self, work, default=None):
        """Run ``work(db)``; a cache that breaks mid-run is switched off, the run goes on."""
        if not self.enabled:
            return default
        try:
            return work(self._db)
        except sqlite3.Error as err:
            self.enabled = False
            print(f"gp-loss: search cache {self.path} failed ({err}); going on without it", file=sys.stderr)
            return default

    # -- a run's side ----------------------------------------------------------------------
    def register(self, fingerprint: str, task: str, description: Mapping[str, Any]) -> None:
        """Record what a fingerprint stands for (``cache stats`` shows it)."""
        text = json.dumps(description, sort_keys=True, default=str)
        self._guarded(
            lambda db: db.execute(
                "INSERT OR IGNORE INTO tasks VALUES (?, ?, ?, ?)", (fingerprint, task, text, time.time())
            )
        )

    def lookup(self, fingerprint: str, genome: str) -> Evaluation | None:
        """The stored result of ``genome``, if any."""
        row = self._guarded(
            lambda db: db.execute(
                "SELECT result FROM results WHERE fingerprint = ? AND genome = ?", (fingerprint, genome)
            ).fetchone()
        )
        return None if row is None else Evaluation.from_json(json.loads(row[0]))

    def lookup_equivalent(self, fingerprint: str, gec_key: str) -> Evaluation | None:
        """A stored trained (or diverged) result with the same gradient-equivalence key."""
        row = self._guarded(
            lambda db: db.execute(
                "SELECT result FROM results WHERE fingerprint = ? AND gec_key = ? "
                "AND outcome IN ('trained', 'diverged') ORDER BY created LIMIT 1",
                (fingerprint, gec_key),
            ).fetchone()
        )
        return None if row is None else Evaluation.from_json(json.loads(row[0]))

    def store(self, fingerprint: str, genome: str, result: Evaluation, run: str | None) -> None:
        """Keep a computed result (the first one stored for a genome stays)."""
        if result.outcome not in STORED:
            return
        stored = result.to_json()
        stored.update(seconds={}, worker=None, reused_from=None, source_outcome=None)
        values = (
            fingerprint,
            genome,
            result.outcome,
            result.gec_key,
            result.fitness,
            json.dumps(stored),
            run,
            time.time(),
        )
        self._guarded(
            lambda db: db.execute("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
        )

    def best_genomes(self, task: str, fingerprint: str, limit: int) -> list[tuple[dict[str, str], float]]:
        """The ``limit`` best trained genomes stored for task ``task`` (``--init cache``): those
        of this fingerprint first (their fitness is comparable), then those of the task's other
        settings; each ranked by the proxy rung it reached, then its fitness."""
        rows = self._guarded(
            lambda db: db.execute(
                "SELECT r.fingerprint, r.genome, r.fitness, r.result FROM results r JOIN tasks t "
                "USING (fingerprint) WHERE t.task = ? AND r.outcome = 'trained' AND r.fitness IS NOT NULL",
                (task,),
            ).fetchall(),
            [],
        )

        def order(row) -> tuple[bool, int, float]:
            rungs = json.loads(row[3]).get("rungs") or []
            return (row[0] == fingerprint, len(rungs), float(row[2]))

        return [(genome_of(row[1]), float(row[2])) for row in sorted(rows, key=order, reverse=True)[:limit]]

    # -- the user's side (``cache`` command) ------------------------------------------------
    def stats(self) -> list[dict[str, Any]]:
        """Per task fingerprint: the task, the number of results per outcome."""
        rows = self._db.execute(
            "SELECT t.fingerprint, t.task, t.description, r.outcome, COUNT(r.genome) FROM tasks t "
            "LEFT JOIN results r ON r.fingerprint = t.fingerprint GROUP BY t.fingerprint, r.outcome"
        ).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for fingerprint, task, description, outcome, count in rows:
            entry = out.setdefault(
                fingerprint,
                {"fingerprint": fingerprint, "task": task, "setting": json.loads(description), "results": {}},
            )
            if outcome is not None:
                entry["results"][outcome] = count
        return list(out.values())

    def export(self) -> Iterator[dict[str, Any]]:
        """Every stored result, as plain JSON."""
        query = "SELECT r.fingerprint, t.task, r.genome, r.result, r.run FROM results r JOIN tasks t USING (fingerprint)"
        for fingerprint, task, genome, result, run in self._db.execute(query):
            yield {
                "fingerprint": fingerprint,
                "task": task,
                "genome": genome,
                "run": run,
                "result": json.loads(result),
            }

    def clear(self, task: str | None = None) -> int:
        """Delete every result (of ``task`` only, if given); returns how many."""
        with self._db:
            if task is None:
                count = self._db.execute("DELETE FROM results").rowcount
                self._db.execute("DELETE FROM tasks")
            else:
                count = self._db.execute(
                    "DELETE FROM results WHERE fingerprint IN (SELECT fingerprint FROM tasks WHERE task = ?)",
                    (task,),
                ).rowcount
                self._db.execute("DELETE FROM tasks WHERE task = ?", (task,))
        return count

    def close(self) -> None:
        self._db.close()


def task_fingerprint(task, options) -> tuple[str, dict[str, Any]] | None:
    """The fingerprint of what decides a candidate's result, and what it hashes; ``None`` where
    the task cannot say what its data is.

    Args:
        task: the task object.
        options: the run's :class:`gp_loss.fitness.pipeline.PipelineOptions`.
    """
    import torch

    data = task.data_identity()
    if data is None:
        return None
    task_options = {k: v for k, v in task.options().items() if k != "device"}
    from gp_loss.fitness.lrp import LossRejection
    from gp_loss.fitness.stages import ProxyTraining

    lrp = LossRejection(
        ProxyTraining(task, rungs=options.rungs),
        task,
        protocol=options.lrp_protocol,
        steps=options.lrp_steps,
        lr=options.lrp_lr,
        eta=options.lrp_eta,
    )
    description = {
        "task": task.name,
        "metric": task.metric,
        # only where it differs: the fingerprints of tasks whose fitness is their target stay as they were
        **({"fitness_metric": task.fitness_metric} if task.fitness_metric != task.metric else {}),
        "options": task_options,
        "device": task.device.type,
        "data": data,
        "proxy": {
            "steps": ProxyTraining(task, rungs=options.rungs).steps,
            "stop_invalid": options.stop_invalid,
        },
        "lrp": {
            "enabled": options.lrp,
            **{
                s.name: {**vars(lrp.settings(s.name)), "far_start": lrp.far_start(s.name) is not None}
                for s in task.slots
            },
        },
        "space": {
            "max_height": options.max_height,
            "max_nodes": options.max_nodes,
            "constant_one": options.constant_one,
        },
        "versions": {
            "torch": ".".join(torch.__version__.split(".")[:2]),
            "gp_loss": __version__,
            "format": FORMAT,
        },
    }
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24], description
