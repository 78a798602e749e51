"""``cache stats|export|clear``: the persistent search cache, for users."""

from __future__ import annotations

import json

import click

from gp_loss.commands.options import json_flag
from gp_loss.core.errors import GpLossError


def _open(path: str | None):
    from gp_loss.engine.search_cache import SearchCache, default_path, resolve

    chosen = resolve(path) if path else default_path()
    if chosen is None:
        raise GpLossError("the search cache is off ($GP_LOSS_SEARCH_CACHE=off); name one with --cache PATH")
    if not chosen.exists():
        raise GpLossError(f"no search cache at {chosen}")
    return SearchCache(chosen)


@click.group("cache")
def cache_cmd() -> None:
    """The persistent search cache that runs share (SQLite)."""


@cache_cmd.command("stats")
@click.option("--cache", "path", default=None, help="The cache file (default: the cache folder's).")
@json_flag()
def stats_cmd(path: str | None, as_json: bool) -> None:
    """Stored results per task fingerprint and outcome."""
    cache = _open(path)
    rows = cache.stats()
    if as_json:
        click.echo(json.dumps({"path": str(cache.path), "fingerprints": rows}, indent=1))
        return
    click.echo(
        f"{cache.path}: {sum(sum(r['results'].values()) for r in rows)} results, {cache.path.stat().st_size / 2**20:.1f} MB"
    )
    for row in rows:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(row["results"].items())) or "nothing stored"
        options = json.dumps(row["setting"].get("options", {}), sort_keys=True)
        click.echo(f"  {row['task']} [{row['fingerprint']}] {options}: {counts}")


@cache_cmd.command("export")
@click.option("--cache", "path", default=None, help="The cache file (default: the cache folder's).")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None, help="Write here (JSON lines).")
def export_cmd(path: str | None, out: str | None) -> None:
    """Every stored result as one JSON line."""
    cache = _open(path)
    lines = (json.dumps(entry) for entry in cache.export())
    if out is None:
        for line in lines:
            click.echo(line)
        return
    with open(out, "w", encoding="utf-8") as handle:
        count = sum(handle.write(line + "\n") > 0 for line in lines)
    click.echo(f"wrote {count} results to {out}", err=True)


@cache_cmd.command("clear")
@click.option("--cache", "path", default=None, help="The cache file (default: the cache folder's).")
@click.option("--task", default=None, help="Only this task's results.")
def clear_cmd(path: str | None, task: str | None) -> None:
    """Delete stored results (all, or one task's)."""
    count = _open(path).clear(task)
    click.echo(f"deleted {count} results" + (f" of task {task}" if task else ""))
