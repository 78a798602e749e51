"""``evolve --config search.toml``: any evolve option in a TOML file, flags on the command line
overriding it. Keys are the flags' names (``max-explored`` or ``max_explored``); task options go
in a ``[task_options]`` table. A key that names no option, or a value of the wrong type, fails
with one line naming the key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gp_loss.core.errors import GpLossError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Keys that cannot come from a file: the file itself, and resuming (run.json holds those settings).
NOT_IN_FILE = ("config", "resume")
TASK_OPTIONS = "task_options"
#: ctx.meta keys: the file's path and its task options (merged under the command line's).
META_FILE, META_TASK_OPTIONS = "gp_loss.config_file", "gp_loss.config_task_options"


def config_option():
    """``--config FILE.toml``, read before every other option so that its values become their
    defaults (a flag given on the command line wins)."""
    return click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        is_eager=True,
        expose_value=False,
        callback=_load,
        metavar="FILE.toml",
        help="Read evolve options from a TOML file (keys: the flags' names; task options in a "
        "[task_options] table); flags given here override it.",
    )


def _load(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    path = Path(value)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise GpLossError(f"cannot read --config {path}: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise GpLossError(f"{path}: not valid TOML ({err})") from None
    defaults, task_options = file_defaults(ctx.command, data, str(path))
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta[META_FILE] = str(path.resolve())
    ctx.meta[META_TASK_OPTIONS] = task_options


def _names(command: click.Command) -> dict[str, click.Option]:
    """Every spelling a file may use for an option: its flag, with dashes or underscores, and
    its parameter name."""
    names: dict[str, click.Option] = {}
    for option in command.params:
        if not isinstance(option, click.Option):
            continue
        for spelling in (*(o.lstrip("-") for o in option.opts), option.name or ""):
            names[spelling] = names[spelling.replace("-", "_")] = option
    return names


def file_defaults(
    command: click.Command, data: dict[str, Any], where: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's values as ``default_map`` entries, and its task options, checked."""
    names = _names(command)
    defaults: dict[str, Any] = {}
    task_options: dict[str, Any] = {}
    for key, value in data.items():
        option = names.get(key) or names.get(key.replace("-", "_"))
        if option is None:
            raise GpLossError(f"{where}: unknown key {key!r} (evolve --help lists the options)")
        if option.name in NOT_IN_FILE:
            raise GpLossError(f"{where}: {key!r} cannot come from a config file")
        if option.name == TASK_OPTIONS:
            task_options.update(_task_options(key, value, where))
            continue
        defaults[option.name] = _checked(option, key, value, where)
    return defaults, task_options


def _task_options(key: str, value: Any, where: str) -> dict[str, Any]:
    """``[task_options]`` as a table (TOML types kept), or a list of ``KEY=VALUE`` strings."""
    from gp_loss.commands.options import task_option_values

    if isinstance(value, dict):
        bad = next((k for k in value if not str(k).isidentifier()), None)
        if bad is not None:
            raise GpLossError(f"{where}: task option {bad!r} is not a name")
        return dict(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return task_option_values(tuple(value))
    raise GpLossError(f'{where}: {key!r} must be a table ([task_options]) or a list of "KEY=VALUE" strings')


def _checked(option: click.Option, key: str, value: Any, where: str) -> Any:
    """``value`` as the option takes it, or a one-line error naming ``key``."""

    def wrong(expected: str) -> GpLossError:
        return GpLossError(f"{where}: {key!r} must be {expected}, got {value!r}")

    if option.is_flag:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if option.multiple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        return tuple(value)
    kind = option.type
    if isinstance(kind, click.Choice):
        if value not in kind.choices:
            raise wrong("one of " + ", ".join(map(str, kind.choices)))
        return value
    if isinstance(kind, click.types.IntParamType):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if isinstance(kind, click.types.FloatParamType):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):  # text: budgets, paths, names
        raise wrong("a string")
    return str(value)


def resolved(ctx: click.Context, values: dict[str, Any], task_options: dict[str, Any]) -> dict[str, Any]:
    """The options the run was started with, wherever each came from (default, file or flag),
    as run.json records them and ``show`` prints them: a valid config file."""
    skip = {*NOT_IN_FILE, "quiet", "out", TASK_OPTIONS}  # reusable for another run: no run directory
    flags = {p.name: p.opts[0].lstrip("-") for p in ctx.command.params if isinstance(p, click.Option)}
    options = {
        flags.get(name, name): list(value) if isinstance(value, tuple) else value
        for name, value in values.items()
        if name not in skip and value is not None and value != ()
    }
    return {"file": ctx.meta.get(META_FILE), "options": options, TASK_OPTIONS: task_options}


def as_toml(config: dict[str, Any]) -> str:
    """A recorded configuration as TOML that ``--config`` reads back."""
    lines = [f"{name} = {_toml_value(value)}" for name, value in config["options"].items()]
    table = config.get(TASK_OPTIONS) or {}
    if table:
        lines += ["", "[task_options]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))
