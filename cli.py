"""gp-loss command line: ``python cli.py COMMAND`` or ``gp-loss COMMAND``.

This file only wires the commands (their bodies live in :mod:`gp_loss.commands`). Every user
error prints one line starting ``gp-loss:`` on stderr and exits with code 2.
"""

from __future__ import annotations

import sys

import click

from gp_loss.commands.bench import bench
from gp_loss.commands.cache import cache_cmd
from gp_loss.commands.evolve import evolve_cmd
from gp_loss.commands.finalize import finalize_cmd
from gp_loss.commands.results import export_cmd, report_cmd, show_cmd, tasks_cmd, train_cmd, verify_cmd
from gp_loss.core.errors import GpLossError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Search loss functions from scratch (AutoLoss-Zero) with DEAP and torch."""


for command in (
    tasks_cmd,
    evolve_cmd,
    finalize_cmd,
    train_cmd,
    show_cmd,
    report_cmd,
    export_cmd,
    verify_cmd,
    cache_cmd,
    bench,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the click group and turns user errors into one line + exit code 2."""
    try:
        code = cli.main(args=argv, prog_name="gp-loss", standalone_mode=False)
        if isinstance(code, int):  # a command's click.exceptions.Exit(code), returned in this mode
            return code
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
