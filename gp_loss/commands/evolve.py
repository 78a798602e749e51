"""``evolve``: start or resume a search."""

from __future__ import annotations

import sys

import click

from gp_loss.commands.config_file import META_FILE, META_TASK_OPTIONS, config_option, resolved
from gp_loss.commands.finalize import finalize_options
from gp_loss.commands.options import import_modules, import_option, task_option_values
from gp_loss.core.errors import GpLossError
from gp_loss.core.option import click_options, from_flags
from gp_loss.core.settings import GROUPS, EvolutionConfig, ExecutionOptions, PipelineOptions, TrackingOptions


def parse_objectives(names: tuple[str, ...], task_class, metric: str | None) -> tuple[str, ...]:
    """``--objectives`` checked against the task's metrics."""
    from gp_loss.engine.pareto import SIZE

    if not names:
        return ()
    text = ",".join(names)
    known = (*task_class.metrics, SIZE)
    for name in names:
        if name not in known:
            raise GpLossError(f"unknown objective {name!r}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise GpLossError(f"--objectives {text!r} names an objective twice")
    if names[0] == SIZE:
        raise GpLossError("the first objective must be a task metric (the proxy's hurdles use it), not size")
    if metric and metric != names[0]:
        raise GpLossError(f"--metric {metric} and --objectives {text} disagree on the target metric")
    return names


@click.command("evolve")
@config_option()
@click.option("--task", help="Task to search losses for (see `tasks`).")
@click.option("--metric", default=None, help="Target metric (default: the task's first).")
@click.option(
    "--budget", default=None, help="Wall-clock budget, e.g. 90s, 10m, 2h (with --resume: time added)."
)
@click.option("--max-explored", type=int, default=None, help="Stop after this many explored losses.")
@click.option("--max-trained", type=int, default=None, help="Stop after this many proxy trainings.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Run directory (default: a fresh folder under runs/).",
)
@click.option(
    "--resume", is_flag=True, help="Continue the run in --out; task and settings come from run.json."
)
@click_options(*GROUPS)  # the evolution, pipeline, execution and tracking settings (gp_loss/core/settings.py)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--torch-threads", type=int, default=None, help="torch threads per evaluation (default: cores / workers)."
)
@import_option()
@click.option(
    "--task-option",
    "task_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Task setting (e.g. steps=200, data_root=...); repeatable.",
)
@click.option(
    "--data-root", default=None, help="Real dataset root (task-specific layout; default: built-in data)."
)
@click.option("--model", default=None, help="Task model (e.g. fasterrcnn_resnet50_fpn for det_coco).")
@click.option(
    "--cache",
    "cache",
    default=None,
    metavar="PATH|off",
    help="Persistent search cache (SQLite) shared by runs; default: search_cache.sqlite in the "
    "cache folder ($GP_LOSS_SEARCH_CACHE overrides); off: none.",
)
@click.option("--quiet", is_flag=True, help="No progress line.")
@click.option(
    "--finalize",
    "then_finalize",
    is_flag=True,
    help="At the end, retrain the top losses over seeds beside the baseline (see `finalize`).",
)
@click.option(
    "--finalize-share",
    type=float,
    default=None,
    metavar="SHARE",
    help="Keep this share of --budget (0-1) for retraining the top losses at final fidelity, "
    "seed round by seed round while a round fits (implies --finalize; --finalize-seeds caps the rounds).",
)
@finalize_options("finalize-")
def evolve_cmd(**kw) -> None:
    """Search a loss for a task; writes run.json, events.jsonl, checkpoint.json, best.json."""
    from gp_loss.api import run
    from gp_loss.core.settings import parse_budget
    from gp_loss.engine.evolution import Limits
    from gp_loss.run.runner import RunSettings, resume, start

    budget = parse_budget(kw["budget"]) if kw["budget"] else None
    share = kw["finalize_share"]
    if share is not None and not 0 < share < 1:
        raise GpLossError(f"--finalize-share {share} must lie between 0 and 1 (a share of --budget)")
    if share is not None and budget is None and (kw["resume"] or kw["max_explored"] or kw["max_trained"]):
        raise GpLossError("--finalize-share is a share of the wall-clock budget: give --budget")
    execution = from_flags(ExecutionOptions, kw)  # only what was given: a resume keeps the rest
    tracking = TrackingOptions(**from_flags(TrackingOptions, kw))
    ctx = click.get_current_context()
    if kw["resume"]:
        if META_FILE in ctx.meta:
            raise GpLossError("--config starts a run; a resumed run keeps the settings its run.json holds")
        if not kw["out"]:
            raise GpLossError("--resume needs --out DIR (the run to continue)")
        if share is not None:
            budget, finalize_seconds = budget * (1 - share), budget * share
        search = resume(
            kw["out"],
            budget,
            kw["max_explored"],
            kw["max_trained"],
            progress=not kw["quiet"],
            execution=execution,
            tracking=tracking or None,
        )
    else:
        if not kw["task"]:
            raise GpLossError("--task is required (see `python cli.py tasks`)")
        from tasks import TASKS

        import_modules(kw["imports"])
        task_class = TASKS.lookup(kw["task"])
        if budget is None and kw["max_explored"] is None and kw["max_trained"] is None:
            budget = parse_budget(task_class.default_budget)
        if share is not None:
            budget, finalize_seconds = budget * (1 - share), budget * share
        options = {**ctx.meta.get(META_TASK_OPTIONS, {}), **task_option_values(kw["task_options"])}
        config = resolved(ctx, kw, dict(options))
        options.update({k: kw[k] for k in ("data_root", "model") if kw[k] is not None})
        evolution = {**task_class.evolution_defaults(), **from_flags(EvolutionConfig, kw)}
        evolution["objectives"] = parse_objectives(evolution.get("objectives", ()), task_class, kw["metric"])
        if kw["metric"] or evolution["objectives"]:
            options["metric"] = kw["metric"] or evolution["objectives"][0]
        options["device"] = kw["device"]
        settings = RunSettings(
            task=kw["task"],
            task_options=options,
            pipeline=PipelineOptions(**from_flags(PipelineOptions, kw)),
            evolution=EvolutionConfig(**evolution),
            limits=Limits(budget, kw["max_explored"], kw["max_trained"]),
            torch_threads=kw["torch_threads"],
            execution=ExecutionOptions(**execution),
            imports=tuple(kw["imports"]),
            cache=kw["cache"],
            tracking=tracking,
            config=config,
        )
        search = start(settings, kw["out"], progress=not kw["quiet"])
        click.echo(f"run directory: {search.directory.path}", err=True)
    result = run(search)
    if result.interrupted:
        sys.exit(130)
    click.echo(result.summary())
    table = None
    if share is not None:
        from gp_loss.results.finalists import finalize_within

        table = finalize_within(
            search.directory.path,
            finalize_seconds,
            top=kw["finalize_top"],
            max_seeds=kw["finalize_seeds"],
            jobs=search.settings.execution.workers,
            quiet=kw["quiet"],
        )
    elif kw["then_finalize"]:
        from gp_loss.results.finalists import finalize

        table = finalize(
            search.directory.path, top=kw["finalize_top"], seeds=kw["finalize_seeds"], quiet=kw["quiet"]
        )
    if table is not None:
        from gp_loss.tracking.artifacts import log_finalists

        click.echo(table.markdown())
        log_finalists(search.directory.path)
