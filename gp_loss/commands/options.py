"""Options and output helpers the commands share."""

from __future__ import annotations

import json
from typing import Any

import click

from gp_loss.core.errors import GpLossError


def task_option_values(values: tuple[str, ...]) -> dict:
    options = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise GpLossError(f"bad --task-option {item!r}; use KEY=VALUE")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def lrp_protocol_option(*names: str, help: str):
    """The choice of Loss-Rejection Protocol (:data:`gp_loss.core.settings.PROTOCOLS`)."""
    from gp_loss.core.settings import PROTOCOLS

    return click.option(
        *names, type=click.Choice(list(PROTOCOLS)), default="shared", show_default=True, help=help
    )


def json_flag(help: str = "Print one JSON document on stdout instead of Markdown."):
    """``--json``: research scripts read the result instead of parsing a Markdown table."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def emit(result: Any, as_json: bool) -> None:
    """Print a result object (``to_json()``/``markdown()``), a JSON-able dict or Markdown text."""
    if as_json:
        data = result.to_json() if hasattr(result, "to_json") else result
        if isinstance(data, str):
            from gp_loss.bench.markdown import markdown_json

            data = markdown_json(data)
        click.echo(json.dumps(data, indent=1, default=str))
        return
    click.echo(result.markdown() if hasattr(result, "markdown") else result)


def import_option():
    """``--import MODULE`` (repeatable): modules that register the user's own tasks or adapters."""
    return click.option(
        "--import",
        "imports",
        multiple=True,
        metavar="MODULE",
        help="Import a module first (one that registers your own task or adapter); repeatable.",
    )


def import_modules(modules: tuple[str, ...] | list[str], run: str | None = None) -> None:
    """Import ``modules``, and those the ``run.json`` of ``run`` (a run directory, or a file in
    one such as its best.json) recorded (``evolve --import``)."""
    from gp_loss.engine.imports import import_modules as import_all
    from gp_loss.run.run_directory import recorded

    wanted = list(modules)
    if run is not None:
        wanted += recorded(run, "imports") or []
    import_all(wanted)
