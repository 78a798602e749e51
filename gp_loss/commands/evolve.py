"""``evolve``: start or resume a search."""

from __future__ import annotations

import sys

import click

from gp_loss.commands.config_file import META_FILE, META_TASK_OPTIONS, config_option, resolved
from gp_loss.commands.finalize import finalize_options
from gp_loss.commands.options import import_modules, import_option, lrp_protocol_option, task_option_values
from gp_loss.errors import GpLossError
from gp_loss.fitness.rungs import PROMOTE


def parse_objectives(text: str | None, task_class, metric: str | None) -> tuple[str, ...]:
    """``--objectives`` as a tuple of names, checked against the task's metrics."""
    from gp_loss.pareto import SIZE

    if not text:
        return ()
    names = tuple(name.strip() for name in text.split(",") if name.strip())
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
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="The evolution's seed; the proxy's training seed is 0 unless --task-option seed=N.",
)
@click.option(
    "--population", type=int, default=None, help="Population size P (default: the task's, 20 for most)."
)
@click.option("--tournament", type=int, default=None, help="Tournament size T (default max(2, P/10)).")
@click.option("--crossover", type=float, default=0.1, show_default=True, help="Crossover probability.")
@click.option(
    "--replace",
    type=click.Choice(["oldest", "worst"]),
    default="oldest",
    show_default=True,
    help="Survivor rule.",
)
@click.option("--random-search", is_flag=True, help="Fresh random losses instead of evolution (baseline).")
@click.option("--no-gec", is_flag=True, help="Switch off the Gradient-Equivalence-Check.")
@click.option("--no-lrp", is_flag=True, help="Switch off the Loss-Rejection Protocol.")
@lrp_protocol_option(
    "--lrp",
    "lrp_protocol",
    help="LRP protocol: shared (an ordering check, then a head shared by all probe samples, "
    "trained on probe features); paper (free predictions, AutoLoss-Zero's, for the ablation).",
)
@click.option("--no-stop-invalid", is_flag=True, help="Keep training through non-finite losses.")
@click.option("--lrp-steps", type=int, default=None, help="LRP optimisation steps K (task default).")
@click.option("--lrp-eta", type=float, default=None, help="LRP rejection threshold eta (task default).")
@click.option(
    "--rungs",
    default=None,
    help="Multi-fidelity proxy: fractions of its steps where a candidate is scored and must clear "
    "a hurdle to train on, e.g. 0.25,1; 1 turns it off (default: the task's, see `tasks`).",
)
@click.option(
    "--promote",
    type=float,
    default=PROMOTE,
    show_default=True,
    help="Share of candidates that train on past each rung (the hurdle is that quantile).",
)
@click.option(
    "--init",
    "init",
    type=click.Choice(["scratch", "baselines"]),
    default="scratch",
    show_default=True,
    help="Initial population: random trees (the paper's) or the task's baseline trees and their mutants.",
)
@click.option("--constant-one", is_flag=True, help="Add the constant 1 to the search space.")
@click.option("--max-height", type=int, default=17, show_default=True, help="Tree height limit.")
@click.option("--max-nodes", type=int, default=64, show_default=True, help="Tree node limit.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--torch-threads", type=int, default=None, help="torch threads per evaluation (default: cores / workers)."
)
@click.option(
    "--backend",
    type=click.Choice(["serial", "process", "ray"]),
    default=None,
    help="Where evaluations run (default serial).",
)
@click.option("--workers", type=int, default=None, help="Evaluations in flight at once (default 1).")
@click.option("--eval-timeout", default=None, help="Per-evaluation time limit, e.g. 90s (outcome timeout).")
@click.option(
    "--gpus-per-eval",
    type=float,
    default=None,
    help="GPUs per evaluation; a fraction packs several on one GPU (default: 1 where there are GPUs).",
)
@click.option("--ray-address", default=None, help="Ray cluster to join (auto = the running one).")
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
    "--objectives",
    default=None,
    metavar="M1,M2,...",
    help="A Pareto search over these (task metrics, or size: the genome's node count); the first "
    "is the fitness the proxy's hurdles use.",
)
@click.option(
    "--cache",
    "cache",
    default=None,
    metavar="PATH|off",
    help="Persistent search cache (SQLite) shared by runs; default: search_cache.sqlite in the "
    "cache folder ($GP_LOSS_SEARCH_CACHE overrides); off: none.",
)
@click.option(
    "--tensorboard",
    default=None,
    metavar="DIR",
    help="Also log the search to TensorBoard, in DIR/<run name> (pip install -e '.[tracking]').",
)
@click.option(
    "--mlflow",
    default=None,
    metavar="URI",
    help="Also log the search as one MLflow run: a server, sqlite:///FILE.db or a folder "
    "(pip install -e '.[tracking]').",
)
@click.option("--quiet", is_flag=True, help="No progress line.")
@click.option(
    "--finalize",
    "then_finalize",
    is_flag=True,
    help="At the end, retrain the top losses over seeds beside the baseline (see `finalize`).",
)
@finalize_options("finalize-")
def evolve_cmd(**kw) -> None:
    """Search a loss for a task; writes run.json, events.jsonl, checkpoint.json, best.json."""
    from gp_loss.api import run
    from gp_loss.evolution import EvolutionConfig, Limits
    from gp_loss.fitness.pipeline import PipelineOptions
    from gp_loss.fitness.rungs import parse_fractions
    from gp_loss.runner import ExecutionOptions, RunSettings, TrackingOptions, parse_budget, resume, start

    budget = parse_budget(kw["budget"]) if kw["budget"] else None
    execution = {
        "backend": kw["backend"],
        "workers": kw["workers"],
        "eval_timeout": parse_budget(kw["eval_timeout"]) if kw["eval_timeout"] else None,
        "gpus_per_eval": kw["gpus_per_eval"],
        "ray_address": kw["ray_address"],
    }
    execution = {k: v for k, v in execution.items() if v is not None}
    tracking = TrackingOptions(kw["tensorboard"], kw["mlflow"])
    ctx = click.get_current_context()
    if kw["resume"]:
        if META_FILE in ctx.meta:
            raise GpLossError("--config starts a run; a resumed run keeps the settings its run.json holds")
        if not kw["out"]:
            raise GpLossError("--resume needs --out DIR (the run to continue)")
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
        if kw["task"] not in TASKS:
            raise GpLossError(f"unknown task {kw['task']!r}; known: {', '.join(sorted(TASKS))}")
        if budget is None and kw["max_explored"] is None and kw["max_trained"] is None:
            budget = parse_budget(TASKS[kw["task"]].default_budget)
        options = {**ctx.meta.get(META_TASK_OPTIONS, {}), **task_option_values(kw["task_options"])}
        config = resolved(ctx, kw, dict(options))
        options.update({k: kw[k] for k in ("data_root", "model") if kw[k] is not None})
        objectives = parse_objectives(kw["objectives"], TASKS[kw["task"]], kw["metric"])
        if kw["metric"] or objectives:
            options["metric"] = kw["metric"] or objectives[0]
        options["device"] = kw["device"]
        settings = RunSettings(
            task=kw["task"],
            task_options=options,
            pipeline=PipelineOptions(
                gec=not kw["no_gec"],
                lrp=not kw["no_lrp"],
                lrp_protocol=kw["lrp_protocol"],
                stop_invalid=not kw["no_stop_invalid"],
                lrp_steps=kw["lrp_steps"],
                lrp_eta=kw["lrp_eta"],
                max_height=kw["max_height"],
                max_nodes=kw["max_nodes"],
                constant_one=kw["constant_one"],
                rungs=parse_fractions(kw["rungs"], "--rungs") if kw["rungs"] else None,
                promote=kw["promote"],
            ),
            evolution=EvolutionConfig(
                population_size=kw["population"] or TASKS[kw["task"]].default_population,
                tournament_size=kw["tournament"],
                crossover_prob=kw["crossover"],
                replace=kw["replace"],
                random_search=kw["random_search"],
                seed=kw["seed"],
                init=kw["init"],
                objectives=objectives,
            ),
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
    if kw["then_finalize"]:
        from gp_loss.finalists import finalize

        table = finalize(
            search.directory.path, top=kw["finalize_top"], seeds=kw["finalize_seeds"], quiet=kw["quiet"]
        )
        click.echo(table.markdown())
        from gp_loss.tracking.artifacts import log_finalists

        log_finalists(search.directory.path)
