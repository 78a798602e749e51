"""``tasks``, ``train``, ``show``, ``report`` and ``export``: what a researcher reads and takes away."""

from __future__ import annotations

import json

import click

from gp_loss.commands.options import emit, import_modules, import_option, json_flag, task_option_values
from gp_loss.core.errors import GpLossError


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print the task descriptions as JSON.")
@import_option()
def tasks_cmd(as_json: bool, imports: tuple[str, ...]) -> None:
    """List the registered tasks with their slots, adapters and metrics."""
    from tasks import TASKS

    import_modules(imports)
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
        fitness = "".join(
            f"; the search's fitness for {t} is the proxy's {f}" for t, f in info["fitness_for"].items()
        )
        click.echo(f"  metrics:   {', '.join(info['metrics'])} (default {info['metrics'][0]}{fitness})")
        if info["reference_losses"]:
            click.echo(f"  baselines: {', '.join(info['reference_losses'])} (references)")
        click.echo(f"  trees:     {', '.join(info['baselines'])} (tree forms, mean-of-tree scale)")
        click.echo(
            f"  search:    {info['default_budget']} budget, population {info['default_population']}, "
            f"rungs {','.join(f'{r:g}' for r in info['default_rungs'])}, "
            f"mutations {','.join(info['default_mutations'])}"
        )


def _task_info(name: str, factory) -> dict:
    return {
        "name": name,
        "metrics": list(factory.metrics),
        "slots": {
            s.name: {"adapter": s.adapter, "spatial": s.spatial, "probe_metric": s.probe_metric}
            for s in factory.slots
        },
        "baselines": sorted(factory.baselines),
        "reference_losses": sorted(factory.reference_losses),
        "default_budget": factory.default_budget,
        "default_population": factory.default_population,
        "default_rungs": list(factory.default_rungs),
        "default_mutations": list(factory.default_mutations),
        "fitness_for": dict(factory.fitness_for),
    }


@click.command("train")
@click.option("--task", "task_name", required=True, help="Task (see `tasks`).")
@click.option(
    "--loss",
    "loss_spec",
    required=True,
    help="A baseline name of the task (e.g. ce) or a best.json / run directory.",
)
@click.option("--seeds", default=1, show_default=True, help="Trainings with seeds 0..N-1: mean and std.")
@click.option("--pick", type=int, default=None, help="A member of the best.json's Pareto front (index).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--data-root", default=None, help="Real dataset root (task-specific layout).")
@click.option("--model", default=None, help="Task model (e.g. fasterrcnn_resnet50_fpn for det_coco).")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
@import_option()
@json_flag()
def train_cmd(
    task_name: str,
    loss_spec: str,
    seeds: int,
    pick: int | None,
    device: str,
    data_root,
    model,
    task_options,
    imports: tuple[str, ...],
    as_json: bool,
) -> None:
    """Retrain with a baseline or found loss; print the test metrics."""
    from gp_loss.results.final_training import train
    from tasks import get_task

    import_modules(imports, loss_spec)
    options = task_option_values(task_options)
    options.update({k: v for k, v in (("data_root", data_root), ("model", model)) if v is not None})
    try:
        task = get_task(task_name, device=device, **options)
    except TypeError as err:
        raise GpLossError(f"bad option for task {task_name!r}: {err}") from None
    emit(train(task, loss_spec, seeds, pick=pick), as_json)


@click.command("show")
@click.argument("run", type=click.Path())
@click.option("--top", default=10, show_default=True, help="Leaderboard length.")
@import_option()
@json_flag()
def show_cmd(run: str, top: int, imports: tuple[str, ...], as_json: bool) -> None:
    """Leaderboard of a run: formula, fitness, outcome counts."""
    from gp_loss.results.report import leaderboard, leaderboard_json

    import_modules(imports, run)
    if as_json:
        emit({**leaderboard_json(run, top), "config": _recorded_config(run)}, as_json)
        return
    text = leaderboard(run, top)
    recorded = _recorded_config(run)
    if recorded:
        from gp_loss.commands.config_file import as_toml

        source = f"{recorded['file']} and flags over it" if recorded.get("file") else "flags and defaults"
        text += f"\n\nconfiguration ({source}; `evolve --config` reads this back):\n{as_toml(recorded)}"
    emit(text, as_json)


def _recorded_config(run: str) -> dict | None:
    """The resolved ``evolve`` options run.json recorded (``None`` for older runs, runs started
    from Python, or an unreadable run.json, which ``show`` reports itself)."""
    from gp_loss.run.run_directory import recorded

    found = recorded(run, "config")
    return found if isinstance(found, dict) and "options" in found else None


@click.command("report")
@click.argument("run", type=click.Path())
@click.option(
    "--no-baselines", is_flag=True, help="No baseline points on a Pareto front's plot (no proxy trainings)."
)
@click.option(
    "--html",
    "as_html",
    is_flag=True,
    help="Write one self-contained report.html instead (plots and formulas inline, no network).",
)
@import_option()
def report_cmd(run: str, no_baselines: bool, as_html: bool, imports: tuple[str, ...]) -> None:
    """Write report.md and PNG plots into the run directory (--html: one report.html)."""
    import_modules(imports, run)
    if as_html:
        from gp_loss.results.report_html import write_html_report

        path = write_html_report(run)
    else:
        from gp_loss.results.report import write_report

        path = write_report(run, baselines=not no_baselines)
    click.echo(f"wrote {path}")


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["python", "torchscript", "exported", "latex", "bundle"]),
    default="python",
    show_default=True,
    help="python: standalone file needing only torch; torchscript: scripted module for "
    "torch.jit.load; exported: torch.export program (.pt2) for torch.export.load; latex: the "
    "simplified formula; bundle: a folder with all of them, test vectors and a model card.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(),
    default=None,
    help="Write here instead of stdout (required for torchscript, exported and bundle).",
)
@click.option("--pick", type=int, default=None, help="A member of the file's Pareto front (index).")
@import_option()
def export_cmd(file: str, fmt: str, out: str | None, pick: int | None, imports: tuple[str, ...]) -> None:
    """Export a found loss (FILE: a best.json or a run directory)."""
    from gp_loss.export.formats import export
    from gp_loss.trees.best_json import read_best

    import_modules(imports, file)
    text = export(read_best(file, pick), fmt, out, source=file)
    if out is None and text is not None:
        click.echo(text, nl=False)
    elif out is not None:
        click.echo(f"wrote {out}", err=True)
    if fmt == "bundle" and out is not None:
        from gp_loss.tracking.artifacts import log_bundle

        log_bundle(file, out)


@click.command("verify")
@click.argument("bundle", type=click.Path())
@json_flag()
def verify_cmd(bundle: str, as_json: bool) -> None:
    """Check an export bundle: files unchanged since export (SHA-256), loss.py, loss.pt and
    loss.pt2 reproduce the test vectors in a fresh process, gradcheck in float64, finite on the
    adapter's edge cases and in half precision. Exit code 0 when every check passes, else 1."""
    from gp_loss.export.verification import verify

    result = verify(bundle)
    emit(result, as_json)
    if not result.passed:
        raise click.exceptions.Exit(1)
