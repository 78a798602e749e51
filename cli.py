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
        click.echo(f"  baselines: {', '.join(info['baselines'])}")


def _task_info(name: str, factory) -> dict:
    return {
        "name": name,
        "metrics": list(factory.metrics),
        "slots": {
            s.name: {"adapter": s.adapter, "spatial": s.spatial, "probe_metric": s.probe_metric}
            for s in factory.slots
        },
        "baselines": sorted(factory.baselines),
    }


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
