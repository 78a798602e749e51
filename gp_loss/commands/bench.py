"""``bench``: measured side by side in one run; paste the output into docs/BENCHMARKS.md."""

from __future__ import annotations

import click

from gp_loss.commands.options import (
    emit,
    import_modules,
    import_option,
    json_flag,
    lrp_protocol_option,
    task_option_values,
)
from gp_loss.core.errors import GpLossError


@click.group("bench")
def bench() -> None:
    """Benchmarks: measured side by side in one run; paste the output into docs/BENCHMARKS.md."""


@bench.command("compile")
@click.option("--rounds", default=7, show_default=True, help="Interleaved timing rounds.")
@click.option("--repeats", default=10, show_default=True, help="Calls per round.")
@json_flag()
def bench_compile(rounds: int, repeats: int, as_json: bool) -> None:
    """Cross-entropy tree fwd+bwd: our codegen vs deap.gp.compile vs hand-written torch."""
    from gp_loss.bench.compile import run

    emit(run(rounds=rounds, repeats=repeats), as_json)


@bench.command("lrp")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option("--random", "n_random", default=30, show_default=True, help="Random trees to add.")
@lrp_protocol_option("--protocol", help="LRP protocol to calibrate.")
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
@json_flag()
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
    as_json: bool,
) -> None:
    """Calibrate LRP: known-good losses must pass, negations and blind trees must be rejected;
    with --against-training, measure whether passing predicts that a loss trains."""
    from gp_loss.bench import lrp_training
    from gp_loss.bench.lrp import run, run_all_metrics
    from tasks import TASKS, get_task

    if task_name not in TASKS:
        raise GpLossError(f"unknown task {task_name!r}; known: {', '.join(sorted(TASKS))}")
    options = task_option_values(task_options)
    if metric and metric != "all":
        options["metric"] = metric
    if against is not None:
        if against < 1 or jobs < 1 or not 0 < fraction <= 1:
            raise GpLossError("--against-training and --jobs must be at least 1, --fraction in (0, 1]")
        task = get_task(task_name, **options)
        emit(lrp_training.run(task, options, against, seed, fraction, jobs), as_json)
        return
    factory = TASKS[task_name]
    lrp_options = {"protocol": protocol, "steps": steps, "eta": eta, "lr": lr}
    every = metric == "all" or (metric is None and factory.probe_follows_metric)
    if every:
        build = lambda m: get_task(task_name, **{**options, "metric": m})  # noqa: E731
        emit(run_all_metrics(build, factory.metrics, n_random, seed, **lrp_options), as_json)
        return
    emit(run(get_task(task_name, **options), n_random, seed, **lrp_options), as_json)


@bench.command("trained-share")
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--fraction", default=0.5, show_default=True, help="Share of the baseline's proxy fitness.")
@json_flag()
def bench_trained_share(runs: tuple[str, ...], fraction: float, as_json: bool) -> None:
    """How many of each run's proxy trainings reached FRACTION of the default baseline's proxy
    fitness (the baseline trained once, as the search trains)."""
    from gp_loss.bench.lrp_training import trained_share

    emit(trained_share(list(runs), fraction), as_json)


@bench.command("screen")
@click.option("-n", "n", default=300, show_default=True, help="Candidates per signature.")
@click.option("--seed", default=0, show_default=True)
@json_flag()
def bench_screen(n: int, seed: int, as_json: bool) -> None:
    """Candidates per second through stages 1-4 on one core (cls_digits and seg-shaped signatures)."""
    from gp_loss.bench.screen import run

    emit(run(n, seed), as_json)


@bench.command("fuzz")
@click.option("--n", "n", default=10_000, show_default=True, help="Random trees per slot signature.")
@click.option("--seed", default=0, show_default=True)
@click.option("--jobs", default=1, show_default=True, help="Signatures fuzzed in parallel (1 thread each).")
@json_flag()
def bench_fuzz(n: int, seed: int, jobs: int, as_json: bool) -> None:
    """Random trees of every slot signature through parse, validity, codegen on extreme inputs,
    LRP, and the python and TorchScript exports; counts failures per stage."""
    from gp_loss.bench.fuzz import run

    emit(run(n, seed, jobs), as_json)


@bench.command("soak")
@click.option(
    "--minutes", default=10.0, show_default=True, help="Budget of the reference and the soaked run."
)
@click.option("--kill-every", default=30.0, show_default=True, help="Seconds between worker kills.")
@click.option(
    "--max-explored",
    type=click.IntRange(min=2),
    default=None,
    help="Cap both runs by candidates instead of --minutes (the driver dies at half of them).",
)
@click.option("--out", "folder", type=click.Path(file_okay=False), required=True, help="Where both runs go.")
@json_flag()
def bench_soak(
    minutes: float, kill_every: float, max_explored: int | None, folder: str, as_json: bool
) -> None:
    """A process-backend search whose workers are SIGKILLed every --kill-every seconds and whose
    driver once: every event accounted for once, and agreement with an unkilled run."""
    from gp_loss.bench.soak import run

    emit(run(folder, minutes, kill_every, explored=max_explored), as_json)


@bench.command("tracking")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option("--max-explored", "explored", type=click.IntRange(min=1), default=400, show_default=True)
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True, help="Pairs of searches.")
@json_flag()
def bench_tracking(task_name: str, explored: int, rounds: int, as_json: bool) -> None:
    """The same capped search without tracking and with TensorBoard + MLflow, alternated: wall
    times, their ratio, and whether both explored the same losses (pip install -e '.[tracking]')."""
    from gp_loss.bench.tracking import run
    from gp_loss.core.settings import TrackingOptions

    TrackingOptions("x", "x").check_installed()
    emit(run(task_name, explored, rounds), as_json)


@bench.command("efficiency")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option("--budget", default="5m", show_default=True, help="Wall clock per variant.")
@click.option("--slice", "slice_", default="15s", show_default=True, help="Interleaving slice.")
@click.option("--seed", default=0, show_default=True)
@click.option("--population", type=int, default=None, help="Population size (default: the task's).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Keep the runs here.")
@json_flag()
def bench_efficiency(
    task_name: str, budget: str, slice_: str, seed: int, population: int | None, out, as_json: bool
) -> None:
    """The paper's ablation: naive, +LRP, +GEC, +stop-invalid, +rungs, and random search, side by side."""
    import torch

    from gp_loss.bench.efficiency import run
    from gp_loss.core.settings import parse_budget

    torch.set_num_threads(1)
    emit(run(task_name, parse_budget(budget), parse_budget(slice_), seed, population, out), as_json)


@bench.command("slots")
@click.option("--task", "task_name", default="det_coco", show_default=True)
@click.option("--budget", default="3m", show_default=True, help="Wall clock per search.")
@click.option("--seed", default=0, show_default=True)
@click.option("--population", type=int, default=None, help="Population size (default: the task's).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Keep the runs here.")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
@json_flag()
def bench_slots(
    task_name: str, budget: str, seed: int, population: int | None, out, task_options, as_json: bool
) -> None:
    """Slot-wise against joint search: draws to fill a population, trainings per minute, best fitness."""
    from gp_loss.bench.slots import run
    from gp_loss.core.settings import parse_budget

    options = task_option_values(task_options)
    emit(run(task_name, parse_budget(budget), seed, population, out, options), as_json)


@bench.command("parallel")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option("--budget", default="60s", show_default=True, help="Wall clock per variant.")
@click.option("--slice", "slice_", default="20s", show_default=True, help="Interleaving slice.")
@click.option("--gpu", is_flag=True, help="Also measure packing 1 vs 4 evaluations per GPU.")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
@json_flag()
def bench_parallel(task_name: str, budget: str, slice_: str, gpu: bool, task_options, as_json: bool) -> None:
    """Explored and trained losses per minute with 1 and 2 workers (and GPU packing with --gpu)."""
    from gp_loss.bench.parallel import run
    from gp_loss.core.settings import parse_budget

    options = task_option_values(task_options)
    emit(run(task_name, parse_budget(budget), parse_budget(slice_), gpu=gpu, task_options=options), as_json)


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
@import_option()
@json_flag()
def bench_table(
    task_name: str, losses, seeds: int, jobs: int, task_options, imports: tuple[str, ...], as_json: bool
) -> None:
    """The paper's table: every metric of every loss on the test split, mean +- std over seeds."""
    from gp_loss.bench.table import parse_rows, run

    if seeds < 1 or jobs < 1:
        raise GpLossError("--seeds and --jobs must be at least 1")
    import_modules(imports)
    rows = parse_rows(losses)
    emit(run(task_name, rows, seeds, jobs, task_option_values(task_options), imports), as_json)


@bench.command("noise")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option(
    "--loss",
    "losses",
    multiple=True,
    metavar="[LABEL=]SPEC",
    help="A loss to pair (two or more; the first is the reference of every pair). "
    "Default: the task's default baseline and its first other baseline.",
)
@click.option("--seeds", default=5, show_default=True, help="Retrainings per loss (seeds 0..N-1).")
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    help="Final protocol(s) to measure side by side (annealed, plain); repeatable. Default: annealed.",
)
@click.option("--jobs", default=1, show_default=True, help="Trainings in parallel (1 thread each).")
@click.option("--log", "log", default=None, help="A JSONL file of finished trainings: a killed run resumes.")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
@import_option()
@json_flag()
def bench_noise(
    task_name: str, losses, seeds: int, protocols, jobs: int, log, task_options, imports, as_json: bool
) -> None:
    """The final protocol's seed noise: each loss's seed std, the paired difference's std and the
    95% paired half-width that 5 seeds would give, per protocol, side by side."""
    from gp_loss.bench.noise import run
    from gp_loss.bench.table import parse_rows

    if jobs < 1:
        raise GpLossError("--jobs must be at least 1")
    import_modules(imports)
    result = run(
        task_name,
        parse_rows(losses) if losses else None,
        seeds,
        jobs,
        task_option_values(task_options),
        tuple(protocols) or ("annealed",),
        imports,
        log,
    )
    emit(result, as_json)


@bench.command("paper")
@click.option("--tasks", "task_names", default="cls_digits,seg_voc,det_coco,inst_coco,pose_coco", show_default=True,
              help="Comma-separated tasks.")  # fmt: skip
@click.option("--budget", default=None, help="Each search's wall-clock budget (default: the task's).")
@click.option("--max-trained", type=int, default=None, help="Also stop each search after N proxy trainings.")
@click.option("--seeds", default=5, show_default=True, help="Retrainings per loss (seeds 0..N-1).")
@click.option("--top", default=3, show_default=True, help="Finalists retrained from each search.")
@click.option("--run", "given", multiple=True, metavar="TASK=DIR", help="Use this run instead of searching.")
@click.option("--out", default="runs/paper", show_default=True, help="Folder for searches, logs and tables.")
@click.option("--jobs", default=1, show_default=True, help="Trainings in parallel (1 thread each).")
@click.option(
    "--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting (every task)."
)
@json_flag()
def bench_paper(
    task_names: str, budget, max_trained, seeds, top, given, out, jobs, task_options, as_json
) -> None:
    """The paper's tables: a search per task (or a given run), its finalists and every reference
    baseline retrained over the same seeds, paired intervals and verdicts; resumable."""
    from gp_loss.bench.paper import parse_runs, run

    tasks = [t.strip() for t in task_names.split(",") if t.strip()]
    runs = parse_runs(given)
    options = task_option_values(task_options)
    emit(run(tasks, out, budget, seeds, runs, top, jobs, options, max_trained), as_json)


@bench.command("fidelity")
@click.option("--task", "task_name", default="cls_digits", show_default=True)
@click.option(
    "--levels", default="0.25,0.5,1", show_default=True, help="Proxy fidelity levels: fractions of its steps."
)
@click.option("--random", "n_random", default=6, show_default=True, help="Random trees that pass LRP.")
@click.option("--seeds", default=2, show_default=True, help="Final retrainings per loss.")
@click.option("--jobs", default=1, show_default=True, help="Trainings in parallel (1 thread each).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random trees.")
@click.option("--best", "given", multiple=True, metavar="PATH", help="A best.json or run directory to add.")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
@click.option(
    "--versus",
    multiple=True,
    metavar="KEY=VALUE[,KEY=VALUE]",
    help="Another proxy to measure side by side: task settings for its proxy trainings only "
    "(e.g. proxy=full); repeatable.",
)
@import_option()
@json_flag()
def bench_fidelity(
    task_name: str,
    levels: str,
    n_random: int,
    seeds: int,
    jobs: int,
    seed: int,
    given: tuple[str, ...],
    task_options,
    versus: tuple[str, ...],
    imports: tuple[str, ...],
    as_json: bool,
) -> None:
    """Rank correlation (Kendall tau, Spearman rho) between the proxy at each fidelity level and
    final retraining, on a seeded panel of baselines, random LRP passers and given losses;
    ``--versus`` measures other proxies against the same retrainings."""
    from gp_loss.bench.fidelity import run

    if seeds < 1 or jobs < 1 or n_random < 0:
        raise GpLossError("--seeds and --jobs must be at least 1, --random at least 0")
    try:
        fractions = [float(part) for part in levels.split(",")]
    except ValueError:
        raise GpLossError(f"bad --levels {levels!r}; use fractions such as 0.25,0.5,1") from None
    import_modules(imports)
    options = task_option_values(task_options)
    result = run(
        task_name,
        options,
        levels=fractions,
        n_random=n_random,
        seeds=seeds,
        jobs=jobs,
        seed=seed,
        given=list(given),
        imports=imports,
        versus=[task_option_values(tuple(part.split(","))) for part in versus],
    )
    emit(result, as_json)
