"""gp-loss command line: ``python cli.py COMMAND`` or ``gp-loss COMMAND``.

Every user error prints one line starting ``gp-loss:`` on stderr and exits with code 2.
"""

from __future__ import annotations

import json
import sys

import click

from gp_loss.errors import GpLossError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Search loss functions from scratch (AutoLoss-Zero) with DEAP and torch."""


@cli.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print the task descriptions as JSON.")
def tasks_cmd(as_json: bool) -> None:
    """List the registered tasks with their slots, adapters and metrics."""
    from tasks import TASKS

    infos = [_task_info(name, factory) for name, factory in sorted(TASKS.items())]
    if as_json:
        click.echo(json.dumps(infos, indent=1))
        return
    if not infos:
        click.echo("no tasks registered")
    for info in infos:
        slots = ", ".join(
            f"{n} ({s['adapter']}{', spatial' if s['spatial'] else ''})" for n, s in info["slots"].items()
        )
        click.echo(f"{info['name']}")
        click.echo(f"  slots:     {slots}")
        click.echo(f"  metrics:   {', '.join(info['metrics'])} (default {info['metrics'][0]})")
        click.echo(f"  baselines: {', '.join(info['baselines'])} (trees)")
        if info["custom_losses"]:
            click.echo(f"             {', '.join(info['custom_losses'])} (hand-written)")


def _task_info(name: str, factory) -> dict:
    return {
        "name": name,
        "metrics": list(factory.metrics),
        "slots": {
            s.name: {"adapter": s.adapter, "spatial": s.spatial, "probe_metric": s.probe_metric}
            for s in factory.slots
        },
        "baselines": sorted(factory.baselines),
        "custom_losses": sorted(getattr(factory, "custom_losses", {})),
    }


def _task_option(values: tuple[str, ...]) -> dict:
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


def _lrp_protocol_option(*names: str, help: str):
    """The choice of Loss-Rejection Protocol (``gp_loss.fitness.rejection.PROTOCOLS``; spelled
    out here so that the CLI starts without importing torch)."""
    return click.option(
        *names, type=click.Choice(["shared", "paper"]), default="shared", show_default=True, help=help
    )


@cli.command("evolve")
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
@click.option("--seed", type=int, default=0, show_default=True)
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
@_lrp_protocol_option(
    "--lrp",
    "lrp_protocol",
    help="LRP protocol: shared (an ordering check, then a head shared by all probe samples, "
    "trained on probe features); paper (free predictions, AutoLoss-Zero's, for the ablation).",
)
@click.option("--no-stop-invalid", is_flag=True, help="Keep training through non-finite losses.")
@click.option("--lrp-steps", type=int, default=None, help="LRP optimisation steps K (task default).")
@click.option("--lrp-eta", type=float, default=None, help="LRP rejection threshold eta (task default).")
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
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE",
    help="Import a module first (one that registers your own task); repeatable.",
)
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
@click.option("--quiet", is_flag=True, help="No progress line.")
def evolve_cmd(**kw) -> None:
    """Search a loss for a task; writes run.json, events.jsonl, checkpoint.json, best.json."""
    from gp_loss.evolution import EvolutionConfig, Limits
    from gp_loss.fitness.pipeline import PipelineOptions
    from gp_loss.search import ExecutionOptions, RunSettings, parse_budget, resume, start
    from gp_loss.summary import summary

    budget = parse_budget(kw["budget"]) if kw["budget"] else None
    execution = {
        "backend": kw["backend"],
        "workers": kw["workers"],
        "eval_timeout": parse_budget(kw["eval_timeout"]) if kw["eval_timeout"] else None,
        "gpus_per_eval": kw["gpus_per_eval"],
        "ray_address": kw["ray_address"],
    }
    execution = {k: v for k, v in execution.items() if v is not None}
    if kw["resume"]:
        if not kw["out"]:
            raise GpLossError("--resume needs --out DIR (the run to continue)")
        search = resume(
            kw["out"],
            budget,
            kw["max_explored"],
            kw["max_trained"],
            progress=not kw["quiet"],
            execution=execution,
        )
    else:
        if not kw["task"]:
            raise GpLossError("--task is required (see `python cli.py tasks`)")
        import importlib

        from tasks import TASKS

        for module in kw["imports"]:
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise GpLossError(f"cannot import {module!r}: {err}") from None
        if kw["task"] not in TASKS:
            raise GpLossError(f"unknown task {kw['task']!r}; known: {', '.join(sorted(TASKS))}")
        if budget is None and kw["max_explored"] is None and kw["max_trained"] is None:
            budget = parse_budget(getattr(TASKS[kw["task"]], "default_budget", "2m"))
        options = _task_option(kw["task_options"])
        options.update({k: kw[k] for k in ("data_root", "model") if kw[k] is not None})
        if kw["metric"]:
            options["metric"] = kw["metric"]
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
            ),
            evolution=EvolutionConfig(
                population_size=kw["population"] or getattr(TASKS[kw["task"]], "default_population", 20),
                tournament_size=kw["tournament"],
                crossover_prob=kw["crossover"],
                replace=kw["replace"],
                random_search=kw["random_search"],
                seed=kw["seed"],
                constant_one=kw["constant_one"],
                max_height=kw["max_height"],
                max_nodes=kw["max_nodes"],
            ),
            limits=Limits(budget, kw["max_explored"], kw["max_trained"]),
            torch_threads=kw["torch_threads"],
            execution=ExecutionOptions(**execution),
            imports=tuple(kw["imports"]),
        )
        search = start(settings, kw["out"], progress=not kw["quiet"])
        click.echo(f"run directory: {search.directory.path}", err=True)
    try:
        with search:
            state = search.run()
    except KeyboardInterrupt:
        click.echo(
            f"\ninterrupted; continue with: python cli.py evolve --resume --out {search.directory.path}",
            err=True,
        )
        sys.exit(130)
    click.echo(
        summary(search.directory.path, state, search.evolution.task, search.settings.evolution.constant_one)
    )


@cli.command("train")
@click.option("--task", "task_name", required=True, help="Task (see `tasks`).")
@click.option(
    "--loss",
    "loss_spec",
    required=True,
    help="A baseline name of the task (e.g. ce) or a best.json / run directory.",
)
@click.option("--seeds", default=1, show_default=True, help="Trainings with seeds 0..N-1: mean and std.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--data-root", default=None, help="Real dataset root (task-specific layout).")
@click.option("--model", default=None, help="Task model (e.g. fasterrcnn_resnet50_fpn for det_coco).")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
def train_cmd(
    task_name: str, loss_spec: str, seeds: int, device: str, data_root, model, task_options
) -> None:
    """Retrain with a baseline or found loss; print the test metrics."""
    from gp_loss.train import train
    from tasks import get_task

    options = _task_option(task_options)
    options.update({k: v for k, v in (("data_root", data_root), ("model", model)) if v is not None})
    try:
        task = get_task(task_name, device=device, **options)
    except TypeError as err:
        raise GpLossError(f"bad option for task {task_name!r}: {err}") from None
    click.echo(train(task, loss_spec, seeds))


@cli.command("show")
@click.argument("run", type=click.Path())
@click.option("--top", default=10, show_default=True, help="Leaderboard length.")
def show_cmd(run: str, top: int) -> None:
    """Leaderboard of a run: formula, fitness, outcome counts."""
    from gp_loss.report import leaderboard

    click.echo(leaderboard(run, top))


@cli.command("report")
@click.argument("run", type=click.Path())
def report_cmd(run: str) -> None:
    """Write report.md and PNG plots into the run directory."""
    from gp_loss.report import write_report

    path = write_report(run)
    click.echo(f"wrote {path}")


@cli.command("export")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["python", "torchscript", "latex"]),
    default="python",
    show_default=True,
    help="python: standalone file needing only torch; torchscript: scripted "
    "module for torch.jit.load; latex: the simplified formula.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write here instead of stdout (required for torchscript).",
)
def export_cmd(file: str, fmt: str, out: str | None) -> None:
    """Export a found loss (FILE: a best.json or a run directory)."""
    from gp_loss.exchange import read_best
    from gp_loss.export import export

    text = export(read_best(file), fmt, out)
    if out is None and text is not None:
        click.echo(text, nl=False)
    elif out is not None:
        click.echo(f"wrote {out}", err=True)


@cli.group("bench")
def bench() -> None:
    """Benchmarks: measured side by side in one run; paste the output into docs/BENCHMARKS.md."""


@bench.command("compile")
@click.option("--rounds", default=7, show_default=True, help="Interleaved timing rounds.")
@click.option("--repeats", default=10, show_default=True, help="Calls per round.")
def bench_compile(rounds: int, repeats: int) -> None:
    """Cross-entropy tree fwd+bwd: our codegen vs deap.gp.compile vs hand-written torch."""
    from gp_loss.bench.compile import run

    click.echo(run(rounds=rounds, repeats=repeats))


@bench.command("lrp")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option("--random", "n_random", default=30, show_default=True, help="Random trees to add.")
@_lrp_protocol_option("--protocol", help="LRP protocol to calibrate.")
@click.option("--steps", type=int, default=None, help="K (task default).")
@click.option("--eta", type=float, default=None, help="Threshold (task default).")
@click.option("--lr", type=float, default=None, help="Adam learning rate (task default).")
@click.option(
    "--metric",
    default=None,
    help="Target metric; 'all' runs every metric (the default for tasks whose LRP metric "
    "follows the target, e.g. seg_voc).",
)
@click.option(
    "--against-training",
    "against",
    type=int,
    default=None,
    metavar="N",
    help="Proxy-train N random passers and N random rejects per protocol and slot, plus the "
    "known losses, and report each protocol's precision and recall.",
)
@click.option(
    "--fraction",
    default=0.5,
    show_default=True,
    help="With --against-training: a loss trains when its proxy fitness reaches this share of "
    "the default baseline's.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the random trees.")
@click.option("--jobs", default=1, show_default=True, help="Proxy trainings in parallel (1 thread each).")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
def bench_lrp(
    task_name: str,
    n_random: int,
    protocol,
    steps,
    eta,
    lr,
    metric,
    against,
    fraction,
    seed,
    jobs,
    task_options,
) -> None:
    """Calibrate LRP: known-good losses must pass, negations and blind trees must be rejected;
    with --against-training, measure whether passing predicts that a loss trains."""
    from gp_loss.bench import lrp_training
    from gp_loss.bench.lrp import run, run_all_metrics
    from tasks import TASKS, get_task

    if task_name not in TASKS:
        raise GpLossError(f"unknown task {task_name!r}; known: {', '.join(sorted(TASKS))}")
    options = _task_option(task_options)
    if metric and metric != "all":
        options["metric"] = metric
    if against is not None:
        if against < 1 or jobs < 1 or not 0 < fraction <= 1:
            raise GpLossError("--against-training and --jobs must be at least 1, --fraction in (0, 1]")
        task = get_task(task_name, **options)
        click.echo(lrp_training.run(task, options, against, seed, fraction, jobs))
        return
    factory = TASKS[task_name]
    lrp_options = {"protocol": protocol, "steps": steps, "eta": eta, "lr": lr}
    every = metric == "all" or (metric is None and getattr(factory, "probe_follows_metric", False))
    if every:
        click.echo(
            run_all_metrics(
                lambda m: get_task(task_name, **{**options, "metric": m}),
                factory.metrics,
                n_random,
                seed,
                **lrp_options,
            )
        )
        return
    click.echo(run(get_task(task_name, **options), n_random, seed, **lrp_options))


@bench.command("trained-share")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--fraction", default=0.5, show_default=True, help="Share of the baseline's proxy fitness.")
def bench_trained_share(runs: tuple[str, ...], fraction: float) -> None:
    """How many of each run's proxy trainings reached FRACTION of the default baseline's proxy
    fitness (the baseline trained once, as the search trains)."""
    from gp_loss.bench.lrp_training import trained_share

    click.echo(trained_share(list(runs), fraction))


@bench.command("screen")
@click.option("-n", "n", default=300, show_default=True, help="Candidates per signature.")
@click.option("--seed", default=0, show_default=True)
def bench_screen(n: int, seed: int) -> None:
    """Candidates per second through stages 1-4 on one core (cls_digits and seg-shaped signatures)."""
    from gp_loss.bench.screen import run

    click.echo(run(n, seed))


@bench.command("efficiency")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option("--budget", default="5m", show_default=True, help="Wall clock per variant.")
@click.option("--slice", "slice_", default="15s", show_default=True, help="Interleaving slice.")
@click.option("--seed", default=0, show_default=True)
@click.option("--population", default=20, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Keep the runs here.")
def bench_efficiency(task_name: str, budget: str, slice_: str, seed: int, population: int, out) -> None:
    """The paper's ablation: naive, +LRP, +GEC, +stop-invalid, and random search, side by side."""
    import torch

    from gp_loss.bench.efficiency import run
    from gp_loss.search import parse_budget

    torch.set_num_threads(1)
    click.echo(run(task_name, parse_budget(budget), parse_budget(slice_), seed, population, out))


@bench.command("parallel")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option("--budget", default="60s", show_default=True, help="Wall clock per variant.")
@click.option("--slice", "slice_", default="20s", show_default=True, help="Interleaving slice.")
@click.option("--gpu", is_flag=True, help="Also measure packing 1 vs 4 evaluations per GPU.")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
def bench_parallel(task_name: str, budget: str, slice_: str, gpu: bool, task_options) -> None:
    """Explored and trained losses per minute with 1 and 2 workers (and GPU packing with --gpu)."""
    from gp_loss.bench.parallel import run
    from gp_loss.search import parse_budget

    click.echo(
        run(
            task_name,
            parse_budget(budget),
            parse_budget(slice_),
            gpu=gpu,
            task_options=_task_option(task_options),
        )
    )


@bench.command("table")
@click.option("--task", "task_name", default="seg_voc", show_default=True)
@click.option(
    "--loss",
    "losses",
    multiple=True,
    required=True,
    metavar="[LABEL=]SPEC",
    help="A row: baseline name or best.json / run directory; repeatable.",
)
@click.option("--seeds", default=3, show_default=True, help="Retrainings per row (seeds 0..N-1).")
@click.option("--jobs", default=1, show_default=True, help="Trainings in parallel (1 thread each).")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
def bench_table(task_name: str, losses, seeds: int, jobs: int, task_options) -> None:
    """The paper's table: every metric of every loss on the test split, mean +- std over seeds."""
    from gp_loss.bench.table import parse_rows, run

    if seeds < 1 or jobs < 1:
        raise GpLossError("--seeds and --jobs must be at least 1")
    click.echo(run(task_name, parse_rows(losses), seeds, jobs, _task_option(task_options)))


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the click group and turns user errors into one line + exit code 2."""
    try:
        cli.main(args=argv, prog_name="gp-loss", standalone_mode=False)
    except GpLossError as err:
        click.echo(f"gp-loss: {err}", err=True)
        return 2
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.ctx.get_help() if err.ctx else str(err))
        return 0
    except click.UsageError as err:
        click.echo(f"gp-loss: {err.format_message()}", err=True)
        return 2
    except click.ClickException as err:
        click.echo(f"gp-loss: {err.format_message()}", err=True)
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.Abort:
        click.echo("gp-loss: aborted", err=True)
        return 1
    except OSError as err:  # disk full, permissions...: one line, never a traceback
        where = f" ({err.filename})" if err.filename else ""
        click.echo(f"gp-loss: {err.strerror or err}{where}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
