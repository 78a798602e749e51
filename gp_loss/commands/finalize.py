"""``finalize``: retrain a run's best losses over seeds beside the baseline; paired verdicts."""

from __future__ import annotations

import click

from gp_loss.commands.options import emit, import_modules, import_option, json_flag, task_option_values


def finalize_options(prefix: str = ""):
    """``--top`` and ``--seeds`` (``--finalize-top``, ``--finalize-seeds`` on ``evolve``)."""

    def wrap(command):
        command = click.option(
            f"--{prefix}seeds",
            "finalize_seeds",
            default=3,
            show_default=True,
            help="Retrainings per loss (seeds 0..N-1).",
        )(command)
        return click.option(
            f"--{prefix}top", "finalize_top", default=3, show_default=True, help="Distinct losses to retrain."
        )(command)

    return wrap


@click.command("finalize")
@click.argument("run", type=click.Path(file_okay=False))
@finalize_options()
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    metavar="NAME",
    help="A baseline to train beside the task's default one; repeatable.",
)
@click.option("--jobs", default=1, show_default=True, help="Trainings in parallel (1 torch thread each).")
@click.option("--task-option", "task_options", multiple=True, metavar="KEY=VALUE", help="Task setting.")
@import_option()
@json_flag()
def finalize_cmd(run, finalize_top, finalize_seeds, baselines, jobs, task_options, imports, as_json) -> None:
    """Retrain the run's top losses and the baselines over the same seeds; print each loss's
    metrics, its paired 95% interval against each baseline and the verdict (also written into
    the run's best.json). Run again after a kill: finished trainings are kept."""
    from gp_loss.results.finalists import finalize

    import_modules(imports, run)
    table = finalize(
        run,
        top=finalize_top,
        seeds=finalize_seeds,
        baselines=baselines,
        jobs=jobs,
        task_options=task_option_values(task_options),
    )
    from gp_loss.tracking.artifacts import log_finalists

    log_finalists(run)
    emit(table, as_json)
